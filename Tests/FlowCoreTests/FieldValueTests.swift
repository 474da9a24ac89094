import FlowCore
import Testing

@Suite("header values")
struct FieldValueTests {
    @Test("integers and numeric strings both read as integers, as different clients send them")
    func integersFromEveryClient() {
        #expect(FieldValue.int(3).integerValue == 3)
        #expect(FieldValue.string("3").integerValue == 3)
        #expect(FieldValue.string(" 12 ").integerValue == 12)
        #expect(FieldValue.bytes(Array("7".utf8)).integerValue == 7)
        #expect(FieldValue.double(4).integerValue == 4)
    }

    @Test("values that are not whole numbers do not read as integers")
    func nonIntegers() {
        #expect(FieldValue.string("three").integerValue == nil)
        #expect(FieldValue.string("").integerValue == nil)
        #expect(FieldValue.double(2.5).integerValue == nil)
        #expect(FieldValue.bool(true).integerValue == nil)
        #expect(FieldValue.table([:]).integerValue == nil)
    }
}

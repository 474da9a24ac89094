import FlowCore
import Foundation

/// Why a safetensors file was refused.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public enum Code: Sendable, Equatable {
        case truncated
        case headerTooLarge
        case invalidHeader
        case invalidTensor
        case unsupportedType
        case tensorNotFound
    }

    public var code: Code
    public var message: String
    public var description: String { message }

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The element types of safetensors this engine reads.
public enum TensorType: String, Sendable, Codable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f64 = "F64"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    public var byteCount: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// One tensor of a file: its type, its shape, and where its bytes are.
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var type: TensorType
    public var shape: [Int]
    /// The byte range within the file's data section.
    public var range: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file (Hugging Face's tensor format), read and checked as untrusted input:
/// an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
/// and byte range, then the data. Every number is checked before use: the header length
/// against the file, each range's size against its dtype and shape, and the ranges against
/// each other (they must tile the data section, no gaps, no overlaps). A file that fails
/// any check is an error that says what is wrong, never a read out of bounds.
public struct SafeTensors: Sendable {
    /// The largest header accepted, as in the reference implementation.
    public static let maximumHeaderBytes = 100 << 20

    public let entries: [String: TensorEntry]
    /// The `__metadata__` object: strings to strings.
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    /// Reads the file at `url`.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(.truncated, "cannot read \(url.path): \(error)")
        }
        try self.init(data: data, source: url.lastPathComponent)
    }

    public init(data: Data, source: String = "the file") throws {
        guard data.count >= 8 else {
            throw SafeTensorsError(.truncated, "\(source) is \(data.count) bytes: a safetensors file starts with an 8-byte header length")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | (UInt64($1.element) << (8 * UInt64($1.offset))) }
        guard headerLength <= UInt64(Self.maximumHeaderBytes) else {
            throw SafeTensorsError(.headerTooLarge, "\(source) declares a \(headerLength)-byte header; more than \(Self.maximumHeaderBytes) bytes is refused")
        }
        guard UInt64(data.count) >= 8 + headerLength else {
            throw SafeTensorsError(.truncated, "\(source) declares a \(headerLength)-byte header but has only \(data.count - 8) bytes after the length: the file is truncated")
        }
        let headerBytes = data.subdata(in: data.startIndex + 8..<data.startIndex + 8 + Int(headerLength))
        guard headerBytes.first == UInt8(ascii: "{"),
              let object = (try? JSONValue(parsing: headerBytes))?.objectValue
        else {
            throw SafeTensorsError(.invalidHeader, "the header of \(source) is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [String: TensorEntry] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let values = value.objectValue?.compactMapValues(\.stringValue), values.count == value.objectValue?.count else {
                    throw SafeTensorsError(.invalidHeader, "__metadata__ of \(source) must map strings to strings")
                }
                metadata = values
                continue
            }
            guard let typeName = value["dtype"]?.stringValue,
                  let shape = value["shape"]?.arrayValue?.map({ $0.intValue ?? -1 }),
                  let offsets = value["data_offsets"]?.arrayValue?.map({ $0.intValue ?? -1 }), offsets.count == 2
            else {
                throw SafeTensorsError(.invalidHeader, "tensor \(name) of \(source) needs dtype, shape and data_offsets [begin, end]")
            }
            guard let type = TensorType(rawValue: typeName) else {
                throw SafeTensorsError(.unsupportedType, "tensor \(name) of \(source) has dtype \(typeName); this engine reads \(TensorType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[1] >= offsets[0] else {
                throw SafeTensorsError(.invalidTensor, "tensor \(name) of \(source) has a negative dimension or backwards offsets \(offsets)")
            }
            var count = 1
            for dimension in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw SafeTensorsError(.invalidTensor, "tensor \(name) of \(source) has a shape \(shape) too large to address") }
                count = product
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: type.byteCount)
            guard !overflow, bytes == offsets[1] - offsets[0] else {
                throw SafeTensorsError(.invalidTensor, "tensor \(name) of \(source) is \(typeName) \(shape), which is \(overflow ? "too many" : String(bytes)) bytes, but its data_offsets \(offsets) span \(offsets[1] - offsets[0])")
            }
            entries[name] = TensorEntry(name: name, type: type, shape: shape, range: offsets[0]..<offsets[1])
        }
        let dataStart = 8 + Int(headerLength)
        let dataLength = data.count - dataStart
        var position = 0
        for entry in entries.values.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            guard entry.range.lowerBound == position else {
                throw SafeTensorsError(.invalidTensor, "tensor \(entry.name) of \(source) starts at byte \(entry.range.lowerBound) of the data, but the previous tensor ends at \(position): the ranges must follow one another without gaps or overlaps")
            }
            position = entry.range.upperBound
        }
        guard position == dataLength else {
            throw SafeTensorsError(position > dataLength ? .truncated : .invalidTensor, "the tensors of \(source) cover \(position) bytes of data but the file holds \(dataLength)\(position > dataLength ? ": the file is truncated" : "")")
        }
        self.entries = entries
        self.metadata = metadata
        self.data = data
        self.dataStart = dataStart
    }

    /// The tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// A floating-point tensor's values as `Float`, converted from F16 or BF16.
    public func floats(_ name: String) throws -> [Float] {
        try floats(name, elements: 0..<entry(name).elementCount)
    }

    /// Some consecutive elements of a floating-point tensor (rows of a row-major matrix)
    /// as `Float`, read from the (memory-mapped) file without touching the rest.
    public func floats(_ name: String, elements: Range<Int>) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: elements.count) { output, initialized in
            try widen(name, elements: elements, into: output.baseAddress!)
            initialized = elements.count
        }
    }

    /// Writes some consecutive elements of a floating-point tensor as `Float` to `output`
    /// (which has room for them): what a product that widens a matrix a block at a time
    /// into a buffer it reuses calls.
    public func widen(_ name: String, elements: Range<Int>, into output: UnsafeMutablePointer<Float>) throws {
        let entry = try entry(name)
        guard elements.lowerBound >= 0, elements.upperBound <= entry.elementCount else {
            throw SafeTensorsError(.invalidTensor, "elements \(elements) are outside tensor \(name) of \(entry.elementCount)")
        }
        let width = entry.type.byteCount
        let start = data.startIndex + dataStart + entry.range.lowerBound + elements.lowerBound * width
        let count = elements.count
        guard count > 0 else { return }
        try data[start..<start + count * width].withUnsafeBytes { raw in
            switch entry.type {
            case .f32:
                for index in 0..<count { output[index] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self).littleEndian) }
            case .f16:
                for index in 0..<count { output[index] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self).littleEndian)) }
            case .bf16 where Int(bitPattern: raw.baseAddress!) % 2 == 0:
                // BF16 is the upper half of an F32: widening is a shift, which this plain
                // loop over aligned halves lets the compiler do 8 or 16 at a time.
                let halves = raw.baseAddress!.assumingMemoryBound(to: UInt16.self)
                for index in 0..<count { output[index] = Float(bitPattern: UInt32(UInt16(littleEndian: halves[index])) << 16) }
            case .bf16:
                for index in 0..<count { output[index] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self).littleEndian) << 16) }
            case .f64:
                for index in 0..<count { output[index] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self).littleEndian)) }
            default:
                throw SafeTensorsError(.unsupportedType, "tensor \(name) is \(entry.type.rawValue), not a floating-point type")
            }
        }
    }

    private func entry(_ name: String) throws -> TensorEntry {
        guard let entry = entries[name] else { throw SafeTensorsError(.tensorNotFound, "no tensor named \(name); the file has \(names.prefix(5).joined(separator: ", "))\(entries.count > 5 ? ", …" : "")") }
        return entry
    }
}

/// Writes tensors as a safetensors file that Hugging Face's libraries read: tensors in
/// name order, the header padded with spaces to a multiple of 8 bytes so the data is
/// aligned.
public enum SafeTensorsWriter {
    public struct Tensor: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        /// F32, or F16 / BF16 rounded to nearest even as PyTorch rounds.
        public var type: TensorType

        public init(name: String, shape: [Int], values: [Float], type: TensorType = .f32) {
            self.name = name
            self.shape = shape
            self.values = values
            self.type = type
        }
    }

    /// `value` as BF16 bits, rounded to nearest even (NaN stays NaN).
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        guard !value.isNaN else { return 0x7FC0 }
        let bits = value.bitPattern
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    public static func data(_ tensors: [Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: JSONValue] = [:]
        if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues(JSONValue.string)) }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for tensor in sorted {
            guard tensor.shape.reduce(1, *) == tensor.values.count else {
                throw SafeTensorsError(.invalidTensor, "tensor \(tensor.name) has shape \(tensor.shape) but \(tensor.values.count) values")
            }
            guard [.f32, .f16, .bf16].contains(tensor.type) else {
                throw SafeTensorsError(.unsupportedType, "tensor \(tensor.name): only F32, F16 and BF16 are written, not \(tensor.type.rawValue)")
            }
            let bytes = tensor.values.count * tensor.type.byteCount
            header[tensor.name] = [
                "dtype": .string(tensor.type.rawValue), "shape": .array(tensor.shape.map { .integer(Int64($0)) }),
                "data_offsets": [.integer(Int64(offset)), .integer(Int64(offset + bytes))],
            ]
            offset += bytes
        }
        var headerBytes = try FlowJSON.encode(JSONValue.object(header))
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var file = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(headerBytes)
        // Whole tensors at a time: the file is little-endian, as every platform we run on.
        for tensor in sorted {
            switch tensor.type {
            case .bf16:
                tensor.values.map { bfloat16Bits($0).littleEndian }.withUnsafeBytes { file.append(contentsOf: $0) }
            case .f16:
                tensor.values.map { Float16($0).bitPattern.littleEndian }.withUnsafeBytes { file.append(contentsOf: $0) }
            default:
                tensor.values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { file.append(contentsOf: $0) }
            }
        }
        return file
    }

    /// Writes the file through a temporary name and a rename, so a crash never leaves a
    /// half-written file under the final name.
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        try data(tensors, metadata: metadata).write(to: temporary)
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: temporary, to: url)
    }
}

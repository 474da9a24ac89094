import CRabbitMQ
import FlowCore
import Glibc

/// Owns the C memory that one outgoing rabbitmq-c call reads (strings, tables, property
/// structs) and frees it all at once when the call has returned.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { free(pointer) }
    }

    func bytes(_ text: String) -> amqp_bytes_t {
        bytes(Array(text.utf8))
    }

    func bytes(_ data: [UInt8]) -> amqp_bytes_t {
        guard !data.isEmpty else { return amqp_bytes_t(len: 0, bytes: nil) }
        let pointer = allocate(data.count)
        data.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: data.count) }
        return amqp_bytes_t(len: data.count, bytes: pointer)
    }

    func cString(_ text: String) -> UnsafePointer<CChar> {
        let utf8 = Array(text.utf8CString)
        let pointer = allocate(utf8.count)
        utf8.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: utf8.count) }
        return UnsafePointer(pointer.assumingMemoryBound(to: CChar.self))
    }

    func table(_ table: FieldTable?) -> amqp_table_t {
        guard let table, !table.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * table.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        // Sorted keys give the same bytes on the wire for the same table, which keeps queue
        // arguments comparable and makes captures readable.
        for (index, key) in table.keys.sorted().enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: field(table[key]!))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: FieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .bool(let flag):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = flag ? 1 : 0
        case .int(let number):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = number
        case .double(let number):
            field.kind = UInt8(AMQP_FIELD_KIND_F64.rawValue)
            field.value.f64 = number
        case .string(let text):
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes(text)
        case .bytes(let data):
            field.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            field.value.bytes = bytes(data)
        case .timestamp(let seconds):
            field.kind = UInt8(AMQP_FIELD_KIND_TIMESTAMP.rawValue)
            field.value.u64 = seconds
        case .array(let values):
            field.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
            let entries = allocate(MemoryLayout<amqp_field_value_t>.stride * max(values.count, 1))
                .bindMemory(to: amqp_field_value_t.self, capacity: max(values.count, 1))
            for (index, element) in values.enumerated() { entries[index] = self.field(element) }
            field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: entries)
        case .table(let nested):
            field.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            field.value.table = table(nested)
        case .void:
            field.kind = UInt8(AMQP_FIELD_KIND_VOID.rawValue)
        }
        return field
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var result = amqp_basic_properties_t()
        var flags: amqp_flags_t = 0
        if let value = properties.contentType {
            flags |= CRabbitMQ_BASIC_CONTENT_TYPE_FLAG
            result.content_type = bytes(value)
        }
        if let value = properties.contentEncoding {
            flags |= CRabbitMQ_BASIC_CONTENT_ENCODING_FLAG
            result.content_encoding = bytes(value)
        }
        if let value = properties.headers {
            flags |= CRabbitMQ_BASIC_HEADERS_FLAG
            result.headers = table(value)
        }
        if let value = properties.deliveryMode {
            flags |= CRabbitMQ_BASIC_DELIVERY_MODE_FLAG
            result.delivery_mode = value
        }
        if let value = properties.priority {
            flags |= CRabbitMQ_BASIC_PRIORITY_FLAG
            result.priority = value
        }
        if let value = properties.correlationID {
            flags |= CRabbitMQ_BASIC_CORRELATION_ID_FLAG
            result.correlation_id = bytes(value)
        }
        if let value = properties.replyTo {
            flags |= CRabbitMQ_BASIC_REPLY_TO_FLAG
            result.reply_to = bytes(value)
        }
        if let value = properties.expiration {
            flags |= CRabbitMQ_BASIC_EXPIRATION_FLAG
            result.expiration = bytes(value)
        }
        if let value = properties.messageID {
            flags |= CRabbitMQ_BASIC_MESSAGE_ID_FLAG
            result.message_id = bytes(value)
        }
        if let value = properties.timestamp {
            flags |= CRabbitMQ_BASIC_TIMESTAMP_FLAG
            result.timestamp = value
        }
        if let value = properties.type {
            flags |= CRabbitMQ_BASIC_TYPE_FLAG
            result.type = bytes(value)
        }
        if let value = properties.userID {
            flags |= CRabbitMQ_BASIC_USER_ID_FLAG
            result.user_id = bytes(value)
        }
        if let value = properties.appID {
            flags |= CRabbitMQ_BASIC_APP_ID_FLAG
            result.app_id = bytes(value)
        }
        result._flags = flags
        return result
    }

    private func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        let pointer = malloc(max(count, 1))!
        allocations.append(pointer)
        return pointer
    }
}

/// Copies of rabbitmq-c's decoded values into Swift values, made before the frame's
/// memory pool is released.
enum CDecoding {
    static func bytes(_ value: amqp_bytes_t) -> [UInt8] {
        guard value.len > 0, let pointer = value.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: value.len))
    }

    static func string(_ value: amqp_bytes_t) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }

    static func table(_ table: amqp_table_t) -> FieldTable {
        var result = FieldTable()
        guard table.num_entries > 0, let entries = table.entries else { return result }
        for index in 0..<Int(table.num_entries) {
            result[string(entries[index].key)] = field(entries[index].value)
        }
        return result
    }

    static func field(_ field: amqp_field_value_t) -> FieldValue {
        switch UInt32(field.kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(field.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: return .int(Int64(field.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: return .int(Int64(field.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: return .int(Int64(field.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: return .int(Int64(field.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: return .int(Int64(field.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: return .int(Int64(field.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: return .int(field.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue:
            return field.value.u64 <= UInt64(Int64.max) ? .int(Int64(field.value.u64)) : .double(Double(field.value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: return .double(Double(field.value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: return .double(field.value.f64)
        case AMQP_FIELD_KIND_DECIMAL.rawValue:
            let decimal = field.value.decimal
            var scaled = Double(decimal.value)
            for _ in 0..<decimal.decimals { scaled /= 10 }
            return .double(scaled)
        case AMQP_FIELD_KIND_UTF8.rawValue: return .string(string(field.value.bytes))
        case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(bytes(field.value.bytes))
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue: return .timestamp(field.value.u64)
        case AMQP_FIELD_KIND_TABLE.rawValue: return .table(table(field.value.table))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            let array = field.value.array
            guard array.num_entries > 0, let entries = array.entries else { return .array([]) }
            return .array((0..<Int(array.num_entries)).map { self.field(entries[$0]) })
        default: return .void
        }
    }

    static func properties(_ properties: amqp_basic_properties_t) -> AMQPProperties {
        let flags = properties._flags
        func has(_ flag: amqp_flags_t) -> Bool { flags & flag != 0 }
        var result = AMQPProperties()
        if has(CRabbitMQ_BASIC_CONTENT_TYPE_FLAG) { result.contentType = string(properties.content_type) }
        if has(CRabbitMQ_BASIC_CONTENT_ENCODING_FLAG) { result.contentEncoding = string(properties.content_encoding) }
        if has(CRabbitMQ_BASIC_HEADERS_FLAG) { result.headers = table(properties.headers) }
        if has(CRabbitMQ_BASIC_DELIVERY_MODE_FLAG) { result.deliveryMode = properties.delivery_mode }
        if has(CRabbitMQ_BASIC_PRIORITY_FLAG) { result.priority = properties.priority }
        if has(CRabbitMQ_BASIC_CORRELATION_ID_FLAG) { result.correlationID = string(properties.correlation_id) }
        if has(CRabbitMQ_BASIC_REPLY_TO_FLAG) { result.replyTo = string(properties.reply_to) }
        if has(CRabbitMQ_BASIC_EXPIRATION_FLAG) { result.expiration = string(properties.expiration) }
        if has(CRabbitMQ_BASIC_MESSAGE_ID_FLAG) { result.messageID = string(properties.message_id) }
        if has(CRabbitMQ_BASIC_TIMESTAMP_FLAG) { result.timestamp = properties.timestamp }
        if has(CRabbitMQ_BASIC_TYPE_FLAG) { result.type = string(properties.type) }
        if has(CRabbitMQ_BASIC_USER_ID_FLAG) { result.userID = string(properties.user_id) }
        if has(CRabbitMQ_BASIC_APP_ID_FLAG) { result.appID = string(properties.app_id) }
        return result
    }
}

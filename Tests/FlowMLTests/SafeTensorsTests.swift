import FlowML
import FlowTesting
import Foundation
import Testing

@Suite("safetensors files")
struct SafeTensorsTests {
    let fixtures = Repository.file("Tests/FlowMLTests/Fixtures")

    struct Expected: Decodable {
        struct Tensor: Decodable {
            var shape: [Int]
            var values: [Float]
        }
        var metadata: [String: String]
        var tensors: [String: Tensor]
    }

    @Test("F32, F16 and BF16 tensors written by Hugging Face's library read back as it reads them")
    func readsReference() async throws {
        try await onOwnThread {
            let file = try SafeTensors(contentsOf: fixtures.appendingPathComponent("mixed.safetensors"))
            let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("expected.json")))
            #expect(file.metadata == expected.metadata)
            #expect(Set(file.names) == Set(expected.tensors.keys))
            for (name, tensor) in expected.tensors {
                #expect(file.entries[name]?.shape == tensor.shape)
                #expect(try file.floats(name) == tensor.values, "\(name)")
            }
            #expect(file.entries["model.embed.bf16"]?.type == .bf16)
            #expect(file.entries["model.norm.half"]?.type == .f16)
        }
    }

    /// A valid file's bytes, to break in one place at a time.
    func validFile() throws -> Data {
        try SafeTensorsWriter.data([.init(name: "a", shape: [2, 2], values: [1, 2, 3, 4]), .init(name: "b", shape: [3], values: [5, 6, 7])])
    }

    func file(header: String, data: Int) -> Data {
        var bytes = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(Data(header.utf8))
        bytes.append(Data(count: data))
        return bytes
    }

    @Test("malformed and truncated files are refused with what is wrong, never read out of bounds")
    func malformed() async throws {
        try await onOwnThread {
            let valid = try validFile()
            let cases: [(String, Data, SafeTensorsError.Code)] = [
                ("shorter than the length", Data([1, 2, 3]), .truncated),
                ("header past the end", valid.prefix(20), .truncated),
                ("data cut short", valid.dropLast(4), .truncated),
                ("huge header length", Data([0, 0, 0, 0, 0, 0, 1, 0]) + Data(count: 8), .headerTooLarge),
                ("header not JSON", file(header: "[1, 2]  ", data: 0), .invalidHeader),
                ("size does not match shape", file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8), .invalidTensor),
                ("gap between tensors", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: 12), .invalidTensor),
                ("overlapping tensors", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8), .invalidTensor),
                ("bytes no tensor covers", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: 8), .invalidTensor),
                ("unknown dtype", file(header: #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: 1), .unsupportedType),
                ("shape that overflows", file(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: 4), .invalidTensor),
            ]
            for (what, bytes, code) in cases {
                let error = try #require(throws: SafeTensorsError.self, "\(what)") { try SafeTensors(data: bytes) }
                #expect(error.code == code, "\(what): \(error)")
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test("a written file reads back, and Hugging Face's library reads it too")
    func writes() async throws {
        try await onOwnThread {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flow-safetensors-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let url = folder.appendingPathComponent("adapter_model.safetensors")
            let a: [Float] = [0.5, -1.25, 3, 1e-7, -0, 65504, 1.5, 2.5]
            let b: [Float] = [1, 2, 3]
            try SafeTensorsWriter.write([.init(name: "x.lora_B.weight", shape: [4, 2], values: a), .init(name: "x.lora_A.weight", shape: [1, 3], values: b)], metadata: ["format": "pt"], to: url)
            let back = try SafeTensors(contentsOf: url)
            #expect(try back.floats("x.lora_B.weight") == a)
            #expect(back.entries["x.lora_A.weight"]?.shape == [1, 3])
            #expect(back.metadata == ["format": "pt"])
            let script = """
            import sys, json
            from safetensors.numpy import load_file
            from safetensors import safe_open
            tensors = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="np") as f:
                metadata = f.metadata()
            print(json.dumps({"metadata": metadata, "tensors": {k: {"shape": list(v.shape), "values": v.flatten().tolist()} for k, v in tensors.items()}}))
            """
            let result = try ProcessRunner.run("/usr/bin/env", ["python3", "-c", script, url.path])
            #expect(result.status == 0, "python3 with safetensors (pip install safetensors numpy) failed: \(result.standardError)")
            let read = try JSONDecoder().decode(Expected.self, from: Data(result.standardOutput.utf8))
            #expect(read.metadata == ["format": "pt"])
            #expect(read.tensors["x.lora_B.weight"]?.values == a)
            #expect(read.tensors["x.lora_B.weight"]?.shape == [4, 2])
            #expect(read.tensors["x.lora_A.weight"]?.values == b)
            try? FileManager.default.removeItem(at: folder)
        }
    }

    @Test("BF16 is written rounded to nearest even, as PyTorch rounds")
    func bfloat16Rounding() async throws {
        try await onOwnThread {
            #expect(SafeTensorsWriter.bfloat16Bits(1) == 0x3F80)
            #expect(SafeTensorsWriter.bfloat16Bits(1 + 0x1p-8) == 0x3F80, "a tie rounds to the even neighbour")
            #expect(SafeTensorsWriter.bfloat16Bits(1 + 0x1p-7 + 0x1p-8) == 0x3F82, "a tie above an odd one rounds up")
            #expect(SafeTensorsWriter.bfloat16Bits(1 + 0x1p-8 + 0x1p-12) == 0x3F81)
            #expect(SafeTensorsWriter.bfloat16Bits(-2.5) == 0xC020)
        }
    }
}

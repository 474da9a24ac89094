import Foundation
import Synchronization

/// The base model's weights, which training never changes.
///
/// Matrices stored as F16 or BF16 stay in that precision, in their memory-mapped files,
/// and are widened to F32 only for the operation that uses them, then dropped: a 7B model
/// costs its 14.5 GB on disk (in the page cache) plus one widened matrix at a time, not
/// 29 GB of F32. F32 matrices, norms and biases are kept in memory as F32.
struct FrozenWeights: Sendable {
    private enum Storage: Sendable {
        case resident([Float])
        case mapped(SafeTensors, count: Int)
    }

    private var tensors: [String: Storage] = [:]

    /// Reads every tensor of `files`, keeping half-precision matrices mapped.
    init(files: [URL]) throws {
        for file in files {
            let safetensors = try SafeTensors(contentsOf: file)
            for (name, entry) in safetensors.entries {
                if entry.shape.count >= 2, entry.type == .bf16 || entry.type == .f16 {
                    tensors[name] = .mapped(safetensors, count: entry.elementCount)
                } else {
                    tensors[name] = .resident(try safetensors.floats(name))
                }
            }
        }
    }

    /// How many values the tensor holds, without reading it.
    func count(_ name: String) -> Int? {
        switch tensors[name] {
        case .resident(let values): values.count
        case .mapped(_, let count): count
        case nil: nil
        }
    }

    /// The tensor as F32: the values kept in memory, or a widened copy for this use.
    subscript(name: String) -> [Float]? {
        switch tensors[name] {
        case .resident(let values): return values
        case .mapped(let file, _): return try? file.floats(name)
        case nil: return nil
        }
    }

    /// Rows `rows` of a row-major matrix `width` wide, as F32, reading only those rows.
    func rows(_ name: String, _ rows: Range<Int>, width: Int) -> [Float]? {
        switch tensors[name] {
        case .resident(let values): return Array(values[(rows.lowerBound * width)..<(rows.upperBound * width)])
        case .mapped(let file, _): return try? file.floats(name, elements: (rows.lowerBound * width)..<(rows.upperBound * width))
        case nil: return nil
        }
    }

    /// `x W^T` for the matrix `name` ([outputs, inputs], row-major) and `rows` rows of x.
    ///
    /// A matrix kept mapped in half precision, multiplied by a few rows (decoding: one
    /// token of each sequence), is widened a block of its rows at a time into a buffer of
    /// about a megabyte that stays in the cache, and each block's product is taken there,
    /// the blocks spread over the engine's threads. Widening it whole first would write and
    /// read back twice its size in F32 for each token (29 GB for a 7B model's 14.5 GB),
    /// which is what a decoding step's time went to. With many rows (training, a prompt)
    /// the product's arithmetic outweighs the widening, and one whole product is faster.
    func product(_ x: [Float], rows: Int, name: String, outputs: Int) -> [Float]? {
        switch tensors[name] {
        case .resident(let values):
            return Matrix.product(x, rows: rows, inner: values.count / outputs, transposing: values, rows: outputs)
        case .mapped(let file, let count) where rows > Self.blockedRows:
            guard let values = try? file.floats(name, elements: 0..<count) else { return nil }
            return Matrix.product(x, rows: rows, inner: count / outputs, transposing: values, rows: outputs)
        case .mapped(let file, let count):
            let inputs = count / outputs
            precondition(x.count == rows * inputs, "matrix shapes do not match")
            let blockRows = max(16, (1 << 18) / max(1, inputs))
            let blocks = (outputs + blockRows - 1) / blockRows
            let failed = Atomic<Bool>(false)
            let y = [Float].filled(count: rows * outputs) { y in
                let output = SendablePointer(y)
                x.withUnsafeBufferPointer { x in
                    let input = SendablePointer(UnsafeMutablePointer(mutating: x.baseAddress!))
                    ComputeThreads.forEach(blocks) { block in
                        let first = block * blockRows
                        let width = min(blockRows, outputs - first)
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: width * inputs)
                        defer { scratch.deallocate() }
                        do {
                            try file.widen(name, elements: (first * inputs)..<((first + width) * inputs), into: scratch)
                        } catch {
                            failed.store(true, ordering: .relaxed)
                            return
                        }
                        Matrix.multiply(input.pointer, lda: inputs, scratch, ldb: inputs, transposingB: true,
                                        into: output.pointer + first, ldc: outputs, m: rows, n: width, k: inputs)
                    }
                }
            }
            return failed.load(ordering: .relaxed) ? nil : y
        case nil:
            return nil
        }
    }

    /// The most rows a mapped matrix is multiplied by a block at a time (``product(_:rows:name:outputs:)``).
    static let blockedRows = 128

    /// Bytes of F32 values held in memory (mapped tensors are not counted).
    var residentBytes: Int {
        tensors.values.reduce(0) { total, storage in
            if case .resident(let values) = storage { return total + values.count * 4 }
            return total
        }
    }
}

/// A pointer handed to the engine's threads, each of which writes only its own part.
private struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
}

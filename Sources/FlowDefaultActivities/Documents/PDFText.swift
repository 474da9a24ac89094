import FlowCore
import Foundation

/// PDF text through poppler's `pdftotext` (and page count through `pdfinfo`), the
/// dependable extractor on Debian. Without poppler-utils the activity fails with the
/// package to install, and the message can be replayed once it is there.
enum PDFText {
    static let searchPath = ["/usr/bin", "/usr/local/bin", "/bin"]

    static func tool(_ name: String) -> String? {
        searchPath.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func extract(_ data: Data, fileName: String) throws -> ExtractedDocument {
        guard let pdftotext = tool("pdftotext") else {
            throw DocumentError(.missingDependency, "reading PDF needs poppler's pdftotext: install it with `apt-get install poppler-utils`, then replay the message")
        }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("flow-pdf-\(UUID().uuidString).pdf")
        try data.write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }

        let extraction = try run(pdftotext, ["-enc", "UTF-8", "-layout", input.path, "-"])
        guard extraction.status == 0 else {
            throw DocumentError(.corrupt, "\(fileName) could not be read as PDF: \(extraction.error.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var metadata: [String: String] = [:]
        if let pdfinfo = tool("pdfinfo"), let info = try? run(pdfinfo, [input.path]), info.status == 0 {
            for line in info.output.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                switch parts[0] {
                case "Pages": metadata["pages"] = parts[1]
                case "Title" where !parts[1].isEmpty: metadata["title"] = parts[1]
                case "Author" where !parts[1].isEmpty: metadata["author"] = parts[1]
                default: break
                }
            }
        }
        // pdftotext separates pages with form feeds; keep them as blank lines.
        let text = extraction.output.replacingOccurrences(of: "\u{0C}", with: "\n\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return ExtractedDocument(format: .pdf, text: text, metadata: metadata)
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let folder = FileManager.default.temporaryDirectory
        let outputFile = folder.appendingPathComponent("flow-out-\(UUID().uuidString)")
        let errorFile = folder.appendingPathComponent("flow-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outputFile)
            try? FileManager.default.removeItem(at: errorFile)
        }
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        let error = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output, error)
    }
}

import FlowContracts
import Foundation

extension DocumentFormat {
    /// Detects the format from the first bytes, then the file name.
    public static func detect(data: Data, fileName: String?) throws -> DocumentFormat {
        if data.starts(with: Array("%PDF-".utf8)) { return .pdf }
        if let fileName, let format = DocumentFormat(fileExtension: (fileName as NSString).pathExtension) {
            return format
        }
        if data.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .docx }
        let head = String(decoding: data.prefix(512), as: UTF8.self).lowercased()
        if head.contains("<html") || head.contains("<!doctype html") { return .html }
        if let first = head.first(where: { !$0.isWhitespace }), first == "{" || first == "[" { return .json }
        if data.prefix(4096).contains(0) {
            throw DocumentError(.unsupportedFormat, "\(fileName ?? "the document") is binary and not a format we read (\(DocumentFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return .text
    }
}

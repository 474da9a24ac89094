import FlowCore
import Foundation

/// The document formats `process_document_upload` reads.
public enum DocumentFormat: String, Codable, Sendable, CaseIterable {
    case text, markdown, html, csv, json, docx, pdf

    /// The format named by a file extension, or `nil` when the extension is not one we read.
    public init?(fileExtension: String) {
        switch fileExtension.lowercased() {
        case "txt", "text", "log": self = .text
        case "md", "markdown": self = .markdown
        case "html", "htm", "xhtml": self = .html
        case "csv": self = .csv
        case "json": self = .json
        case "docx": self = .docx
        case "pdf": self = .pdf
        default: return nil
        }
    }
}

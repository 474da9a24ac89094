import FlowContracts
import FlowCore
import Foundation
import ZIPFoundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Text and metadata extracted from a document.
public struct ExtractedDocument: Sendable, Equatable {
    public var format: DocumentFormat
    public var text: String
    public var metadata: [String: String]
}

/// Extracts plain text from the formats of ``DocumentFormat``. Unsupported and corrupt
/// documents fail non-retryably with the reason: another attempt would read the same bytes.
public struct TextExtractor: Sendable {
    public init() {}

    public func extract(_ data: Data, format: DocumentFormat, fileName: String) throws -> ExtractedDocument {
        switch format {
        case .text:
            return ExtractedDocument(format: format, text: decodeText(data), metadata: [:])
        case .markdown:
            let text = decodeText(data)
            var metadata: [String: String] = [:]
            if let heading = text.split(separator: "\n").first(where: { $0.hasPrefix("# ") }) {
                metadata["title"] = String(heading.dropFirst(2)).trimmingCharacters(in: .whitespaces)
            }
            return ExtractedDocument(format: format, text: text, metadata: metadata)
        case .html:
            return HTMLText.extract(decodeText(data))
        case .csv:
            return try CSVText.extract(decodeText(data), fileName: fileName)
        case .json:
            return try jsonText(data, fileName: fileName)
        case .docx:
            return try docxText(data, fileName: fileName)
        case .pdf:
            return try PDFText.extract(data, fileName: fileName)
        }
    }

    private func decodeText(_ data: Data) -> String {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        // Not UTF-8: read as Latin-1, which maps every byte, rather than refuse a text file.
        return String(bytes.map { Character(Unicode.Scalar($0)) })
    }

    private func jsonText(_ data: Data, fileName: String) throws -> ExtractedDocument {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: data)
        } catch {
            let reason = (error as? DecodingError).map(FlowJSON.describe) ?? "\(error)"
            throw DocumentError(.corrupt, "\(fileName) is not valid JSON: \(reason)")
        }
        let pretty = try FlowJSON.encodeText(value, pretty: true)
        var metadata: [String: String] = [:]
        if let dictionary = value.objectValue {
            metadata["top_level"] = "object"
            metadata["keys"] = dictionary.keys.sorted().joined(separator: ",")
        } else if let array = value.arrayValue {
            metadata["top_level"] = "array"
            metadata["items"] = String(array.count)
        }
        return ExtractedDocument(format: .json, text: pretty, metadata: metadata)
    }

    /// A DOCX file is a zip holding `word/document.xml`: paragraphs are `w:p`, text runs
    /// `w:t`, tabs `w:tab`, line breaks `w:br`.
    private func docxText(_ data: Data, fileName: String) throws -> ExtractedDocument {
        let archive: Archive
        do {
            archive = try Archive(data: data, accessMode: .read)
        } catch {
            throw DocumentError(.corrupt, "\(fileName) is not a readable DOCX (zip) file: \(error)")
        }
        func read(_ path: String) throws -> Data? {
            guard let entry = archive[path] else { return nil }
            var content = Data()
            do {
                _ = try archive.extract(entry, skipCRC32: false) { content.append($0) }
            } catch {
                throw DocumentError(.corrupt, "\(fileName): \(path) inside the DOCX is damaged: \(error)")
            }
            return content
        }
        guard let document = try read("word/document.xml") else {
            throw DocumentError(.corrupt, "\(fileName) is a zip file without word/document.xml, so not a DOCX document")
        }
        let collector = DocxTextCollector()
        let parser = XMLParser(data: document)
        parser.delegate = collector
        guard parser.parse() else {
            throw DocumentError(.corrupt, "\(fileName): word/document.xml is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        var metadata: [String: String] = ["paragraphs": String(collector.paragraphs.count)]
        if let core = try read("docProps/core.xml") {
            let properties = CorePropertiesCollector()
            let coreParser = XMLParser(data: core)
            coreParser.delegate = properties
            if coreParser.parse() {
                for (key, value) in properties.values where !value.isEmpty { metadata[key] = value }
            }
        }
        return ExtractedDocument(format: .docx, text: collector.paragraphs.joined(separator: "\n"), metadata: metadata)
    }
}

private final class DocxTextCollector: NSObject, XMLParserDelegate {
    var paragraphs: [String] = []
    private var current = ""
    private var inText = false

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        switch name {
        case "w:t": inText = true
        case "w:tab": current += "\t"
        case "w:br", "w:cr": current += "\n"
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "w:t": inText = false
        case "w:p":
            paragraphs.append(current)
            current = ""
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inText { current += string }
    }
}

private final class CorePropertiesCollector: NSObject, XMLParserDelegate {
    var values: [String: String] = [:]
    private var element: String?
    private let wanted = ["dc:title": "title", "dc:creator": "author", "dcterms:created": "created", "dcterms:modified": "modified"]

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        element = wanted[name]
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        element = nil
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let element { values[element, default: ""] += string.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

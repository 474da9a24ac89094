/// Samples and types read from Prometheus' text exposition format, as every process serves
/// it on `/metrics`: for the console, and for the tests that check what a scrape shows.
/// Hand-written because no package in the mirror parses the format (the Prometheus
/// libraries write it); it reads what the format's grammar allows and skips any line it
/// cannot read, since a console must show what it can.
public struct PrometheusText: Sendable {
    public struct Sample: Sendable, Equatable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public var samples: [Sample] = []
    /// Each metric family's type from its `# TYPE` line: counter, gauge, histogram, …
    public var types: [String: String] = [:]

    public init(_ text: String) {
        for line in text.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
            } else if !line.hasPrefix("#"), let sample = Self.sample(Substring(line)) {
                samples.append(sample)
            }
        }
    }

    /// The samples of `name` whose labels include `matching`.
    public func samples(_ name: String, matching: [String: String] = [:]) -> [Sample] {
        samples.filter { sample in sample.name == name && matching.allSatisfy { key, value in sample.labels[key] == value } }
    }

    /// The sum of every sample of `name` whose labels include `matching`.
    public func sum(_ name: String, matching: [String: String] = [:]) -> Double {
        samples(name, matching: matching).reduce(0) { $0 + $1.value }
    }

    /// The values of label `label` among the samples of `name`.
    public func labelValues(_ name: String, _ label: String) -> [String] {
        Array(Set(samples.filter { $0.name == name }.compactMap { $0.labels[label] })).sorted()
    }

    private static func sample(_ line: Substring) -> Sample? {
        var rest = line.drop { $0 == " " }
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard !name.isEmpty else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while let first = rest.first, first != "}" {
                let key = rest.prefix { $0 != "=" }
                rest = rest.dropFirst(key.count)
                guard rest.first == "=", rest.dropFirst().first == "\"" else { return nil }
                rest = rest.dropFirst(2)
                var value = ""
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(character == "n" ? "\n" : character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        break
                    } else {
                        value.append(character)
                    }
                }
                labels[key.trimmingCharacters(in: " ,")] = value
                rest = rest.drop { $0 == "," || $0 == " " }
            }
            guard rest.first == "}" else { return nil }
            rest = rest.dropFirst()
        }
        let number = rest.drop { $0 == " " }.prefix { $0 != " " }
        guard let value = Double(number) else { return nil }
        return Sample(name: String(name), labels: labels, value: value)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(self.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

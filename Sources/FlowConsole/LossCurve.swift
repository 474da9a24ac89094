/// A training job's loss per step, drawn as SVG on the server: no script, no CDN, so it
/// shows on an air-gapped machine and with JavaScript off.
///
/// One point per logged step (a `circle` with a `title`, so a screen reader and a hover
/// both give the step and its loss), joined by one polyline, on axes labelled with the
/// first and last step and the lowest and highest loss. Every number written is computed
/// here, so nothing in the SVG comes from input text.
public struct LossCurve: Sendable {
    public var losses: [Double]
    public var width = 640.0
    public var height = 240.0
    private let margin = (left: 56.0, right: 16.0, top: 16.0, bottom: 32.0)

    public init(losses: [Double]) {
        self.losses = losses.filter(\.isFinite)
    }

    /// The point of step `step` (1-based) in the SVG's coordinates.
    func point(step: Int) -> (x: Double, y: Double) {
        let plotWidth = width - margin.left - margin.right
        let plotHeight = height - margin.top - margin.bottom
        let low = losses.min() ?? 0
        let high = losses.max() ?? 1
        let span = high - low > 0 ? high - low : 1
        let x = margin.left + (losses.count > 1 ? Double(step - 1) / Double(losses.count - 1) : 0.5) * plotWidth
        let y = margin.top + (1 - (losses[step - 1] - low) / span) * plotHeight
        return (x, y)
    }

    public var svg: String {
        guard !losses.isEmpty else {
            return #"<p class="empty">No step has been logged yet.</p>"#
        }
        let points = (1...losses.count).map { point(step: $0) }
        let low = losses.min()!, high = losses.max()!
        let plotBottom = height - margin.bottom
        var svg = #"<svg class="loss-curve" role="img" aria-labelledby="loss-title" viewBox="0 0 \#(format(width)) \#(format(height))" width="\#(format(width))" height="\#(format(height))" xmlns="http://www.w3.org/2000/svg" data-points="\#(losses.count)">"#
        svg += #"<title id="loss-title">Training loss over \#(losses.count) steps, from \#(format(losses.first!, digits: 4)) to \#(format(losses.last!, digits: 4))</title>"#
        svg += #"<line class="axis" x1="\#(format(margin.left))" y1="\#(format(margin.top))" x2="\#(format(margin.left))" y2="\#(format(plotBottom))"/>"#
        svg += #"<line class="axis" x1="\#(format(margin.left))" y1="\#(format(plotBottom))" x2="\#(format(width - margin.right))" y2="\#(format(plotBottom))"/>"#
        svg += #"<text class="label" x="\#(format(margin.left - 6))" y="\#(format(margin.top + 4))" text-anchor="end">\#(format(high, digits: 3))</text>"#
        svg += #"<text class="label" x="\#(format(margin.left - 6))" y="\#(format(plotBottom))" text-anchor="end">\#(format(low, digits: 3))</text>"#
        svg += #"<text class="label" x="\#(format(margin.left))" y="\#(format(height - 8))">step 1</text>"#
        svg += #"<text class="label" x="\#(format(width - margin.right))" y="\#(format(height - 8))" text-anchor="end">step \#(losses.count)</text>"#
        svg += #"<polyline class="line" fill="none" points="\#(points.map { "\(format($0.x)),\(format($0.y))" }.joined(separator: " "))"/>"#
        for (index, point) in points.enumerated() {
            svg += #"<circle class="point" cx="\#(format(point.x))" cy="\#(format(point.y))" r="2.5"><title>step \#(index + 1): loss \#(format(losses[index], digits: 4))</title></circle>"#
        }
        return svg + "</svg>"
    }

    /// Fixed-point text that does not depend on the locale.
    private func format(_ value: Double, digits: Int = 2) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        let sign = rounded < 0 ? "-" : ""
        let magnitude = abs(rounded)
        let whole = Int(magnitude)
        let fraction = Int(((magnitude - Double(whole)) * scale).rounded())
        let fractionText = String(fraction)
        return sign + String(whole) + "." + String(repeating: "0", count: max(0, digits - fractionText.count)) + fractionText
    }
}

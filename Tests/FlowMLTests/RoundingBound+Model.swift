import FlowML
import FlowTesting
import Testing

extension RoundingBound {
    /// A first-order bound on the relative rounding error of a forward pass's outputs
    /// (logits, and the loss) over `positions` positions, measured against the O(1) scale
    /// that RMSNorm holds the residual stream to (so comparisons divide by `max(1, |x|)`).
    ///
    /// Why it holds: each value on the residual stream is the sum of the layers' outputs,
    /// so to first order its error is the sum of theirs; a layer's output is a chain of
    /// reductions, each adding at most γ of its length: the norm before attention (hidden),
    /// the q, k, v products (hidden, plus the adapter's rank), the scores (head dimension),
    /// the softmax's sum and the weighted values (positions each), the output product
    /// (heads × head dimension), the norm before the MLP (hidden), gate and up (hidden,
    /// plus the rank) and down (intermediate). The final norm and the head add hidden twice,
    /// and the loss's log-sum-exp the vocabulary. γ of the summed lengths bounds them all.
    static func forwardPass(_ model: ModelConfiguration, positions: Int, adapterRank: Int = 0, withLoss: Bool = false) -> Double {
        gamma(forwardTerms(model, positions: positions, adapterRank: adapterRank, withLoss: withLoss))
    }

    /// The same chain under Higham and Mary's probabilistic bound
    /// (``RoundingBound/probabilisticGamma(_:lambda:)``).
    static func probableForwardPass(_ model: ModelConfiguration, positions: Int, adapterRank: Int = 0, withLoss: Bool = false) -> Double {
        probabilisticGamma(forwardTerms(model, positions: positions, adapterRank: adapterRank, withLoss: withLoss))
    }

    /// The same for the gradients of the loss: the backward pass runs the forward chain's
    /// reductions again, transposed, after the forward pass's own (twice the terms),
    /// relative to the largest gradient of the same matrix.
    static func backwardPass(_ model: ModelConfiguration, positions: Int, adapterRank: Int = 0) -> Double {
        gamma(2 * forwardTerms(model, positions: positions, adapterRank: adapterRank, withLoss: true))
    }

    private static func forwardTerms(_ model: ModelConfiguration, positions: Int, adapterRank: Int, withLoss: Bool) -> Int {
        let attention = model.hiddenSize + (model.hiddenSize + adapterRank) + model.headDimension + 2 * positions + model.headCount * model.headDimension
        let mlp = model.hiddenSize + (model.hiddenSize + adapterRank) + model.intermediateSize
        return model.layerCount * (attention + mlp) + 2 * model.hiddenSize + (withLoss ? model.vocabularySize : 0)
    }

    /// The largest of `|value − reference| / max(1, |reference|)`: the error on the O(1)
    /// scale that ``forwardPass(_:positions:adapterRank:withLoss:)`` bounds.
    static func largestScaledDifference(_ values: [Float], _ reference: [Float]) -> Double {
        zip(values, reference).reduce(0) { max($0, Double(abs($1.0 - $1.1)) / max(1, Double(abs($1.1)))) }
    }
}

/// Adapter gradients against central differences of the loss, one matrix at a time:
/// the loss is moved along the matrix's own gradient direction, where the derivative is
/// that gradient's norm, as large as the matrix's gradient allows. A single weight's
/// derivative (1e-4 here) is below what rounding lets a finite difference resolve.
///
/// The bound is derived from the computation: for the numeric side,
/// ``RoundingBound/centralDifference(atStep:atDoubleStep:step:valueError:)`` with the loss's
/// rounding error (Higham and Mary's probabilistic bound of the forward chain, plus the
/// loss's own rounding to Float: the worst case, divided by the step, would exceed the
/// derivatives themselves), at whichever of a few small steps gives the tightest bound;
/// for the analytic side, ``RoundingBound/backwardPass(_:positions:adapterRank:)`` of the
/// gradient's norm.
enum GradientCheck {
    static func expectMatchesCentralDifferences(
        _ model: LlamaModel, _ batch: TrainingBatch, adapter: LoRAAdapter, dropout: LoRADropout? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let (loss, gradients) = try model.lossAndGradients(batch, adapter: adapter, dropout: dropout)
        let positions = batch.ids.map(\.count).max() ?? 0
        let lossError = RoundingBound.probableForwardPass(model.configuration, positions: positions, adapterRank: adapter.rank, withLoss: true) * max(1, Double(abs(loss)))
            + Double(loss.ulp)
        let analyticError = RoundingBound.backwardPass(model.configuration, positions: positions, adapterRank: adapter.rank)
        let matrices = gradients.a.keys.sorted().map { ($0, true) } + gradients.b.keys.sorted().map { ($0, false) }
        #expect(matrices.count > 0, sourceLocation: sourceLocation)
        // The matrices where the check would see a derivative off by a quarter: a check
        // whose bound exceeds what it checks everywhere could not fail.
        var resolving = 0
        for (module, isA) in matrices {
            let gradient = (isA ? gradients.a[module]! : gradients.b[module]!).map(Double.init)
            let norm = gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { continue }
            let direction = gradient.map { $0 / norm }
            func loss(at step: Double) throws -> Double {
                var moved = adapter
                let original = isA ? adapter.a[module]! : adapter.b[module]!
                let values = zip(original, direction).map { Float(Double($0) + step * $1) }
                if isA { moved.a[module] = values } else { moved.b[module] = values }
                return Double(try model.lossAndGradients(batch, adapter: moved, dropout: dropout).loss)
            }
            func difference(_ h: Double) throws -> Double { (try loss(at: h) - loss(at: -h)) / (2 * h) }
            var best: (numeric: Double, bound: Double)?
            for h in [0.01, 0.03, 0.1] {
                let (atStep, atDoubleStep) = (try difference(h), try difference(2 * h))
                let bound = RoundingBound.centralDifference(atStep: atStep, atDoubleStep: atDoubleStep, step: h, valueError: lossError)
                if bound < best?.bound ?? .infinity { best = (atStep, bound) }
            }
            let (numeric, numericBound) = best!
            // Moved along its own gradient, the loss changes at the rate of the gradient's norm.
            let bound = numericBound + analyticError * norm
            if bound < norm / 4 { resolving += 1 }
            #expect(abs(numeric - norm) <= bound, "\(module) \(isA ? "A" : "B"): numeric \(numeric), analytic \(norm), bound \(bound)", sourceLocation: sourceLocation)
        }
        #expect(2 * resolving >= matrices.count, "the check resolves a quarter of the derivative on only \(resolving) of \(matrices.count) matrices", sourceLocation: sourceLocation)
    }
}

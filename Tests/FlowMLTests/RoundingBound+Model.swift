import FlowML
import FlowTesting

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
        let attention = model.hiddenSize + (model.hiddenSize + adapterRank) + model.headDimension + 2 * positions + model.headCount * model.headDimension
        let mlp = model.hiddenSize + (model.hiddenSize + adapterRank) + model.intermediateSize
        let terms = model.layerCount * (attention + mlp) + 2 * model.hiddenSize + (withLoss ? model.vocabularySize : 0)
        return gamma(terms)
    }
}

/// Bounds on the rounding error of single-precision arithmetic, for tests that compare two
/// computations of the same value.
///
/// The reasoning is Higham's ("Accuracy and Stability of Numerical Algorithms", §3.1):
/// with the unit roundoff `u` of `Float` (2⁻²⁴), a sum of `n` terms computed in *any*
/// order, pairwise, blocked or with fused multiply-adds, lies within `γₙ·Σ|termᵢ|` of the
/// exact sum, where `γₙ = n·u / (1 − n·u)`. Two implementations that sum the same terms in
/// different orders (another OpenBLAS kernel, a product cut into blocks, a cache built
/// chunk by chunk) therefore differ by at most `2·γₙ·Σ|termᵢ|`, whatever the CPU. A
/// fixed tolerance such as 1e-6 is a guess that holds on one kernel and fails on another.
import Foundation

public enum RoundingBound {
    /// The unit roundoff of `Float`: half the distance from 1 to the next float.
    public static let unitRoundoff = Double(Float.ulpOfOne) / 2

    /// `γₙ`: the relative error bound of an `n`-term sum or dot product in any order.
    public static func gamma(_ n: Int) -> Double {
        let nu = Double(n) * unitRoundoff
        precondition(nu < 1, "no bound: \(n) terms exhaust single precision")
        return nu / (1 - nu)
    }

    /// `γ̃ₙ(λ)`: Higham and Mary's probabilistic bound ("A New Approach to Probabilistic
    /// Rounding Error Analysis", SIAM J. Sci. Comput. 41(5), 2019, Theorem 2.4). When the
    /// rounding errors are independent and of mean zero, an `n`-term sum lies within
    /// `γ̃ₙ(λ)·Σ|termᵢ|` of the exact one with probability at least
    /// `1 − 2n·exp(−λ²(1 − u)²/2)`; with λ = 6 that is a failure below 1e-4 even for a
    /// million terms, and it grows as √n where `gamma(_:)` grows as n. Use it where the
    /// worst case is too loose to test anything (a finite difference of a loss).
    public static func probabilisticGamma(_ n: Int, lambda: Double = 6) -> Double {
        let u = unitRoundoff
        return exp(lambda * Double(n).squareRoot() * u + Double(n) * u * u / (1 - u)) - 1
    }

    /// How far a computed `alpha·Σₗ aₗbₗ + beta·c` (one element of a BLAS product over an
    /// inner dimension of `length`) may lie from the exact value, given its `absoluteSum`,
    /// `|alpha|·Σₗ|aₗbₗ| + |beta·c|`: the `length` products, their sum, the scaling and the
    /// final addition are `length + 2` rounded operations on one chain.
    public static func product(length: Int, absoluteSum: Double) -> Double {
        gamma(length + 2) * absoluteSum
    }

    /// How far a central difference `(f(x+h) − f(x−h)) / 2h` may lie from `f'(x)`, with
    /// both parts of its error taken from the computation itself:
    /// - truncation: the error of `D(h)` is `h²·f'''/6 + O(h⁴)`, so `D(h) − D(2h)` is three
    ///   times it (Richardson); `|D(h) − D(2h)|` therefore bounds it with a margin of 3;
    /// - rounding: each of `f(x±h)` carries an absolute error of at most `valueError`, and
    ///   dividing their difference by `2h` gives `valueError / h`.
    public static func centralDifference(atStep stepDifference: Double, atDoubleStep doubleStepDifference: Double, step h: Double, valueError: Double) -> Double {
        abs(stepDifference - doubleStepDifference) + 2 * valueError / h
    }
}

package report

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Wilson intervals against the published values of Newcombe (1998), "Two-sided
// confidence intervals for the single proportion: comparison of seven
// methods", Statistics in Medicine 17, table II, method 3 (score, no
// continuity correction), given to 4 decimals.
func TestWilsonNewcombe(t *testing.T) {
	for _, c := range []struct {
		k, n     int64
		low, hig float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0.0000, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{29, 29, 0.8830, 1.0000},
	} {
		low, high := Wilson(c.k, c.n)
		if !near(low, c.low, 0.00005) || !near(high, c.hig, 0.00005) {
			t.Errorf("Wilson(%d, %d) = (%.5f, %.5f), want (%.4f, %.4f)", c.k, c.n, low, high, c.low, c.hig)
		}
	}
	if low, high := Wilson(0, 0); low != 0 || high != 1 {
		t.Errorf("Wilson(0, 0) = (%v, %v), want (0, 1)", low, high)
	}
	// The bounds at k = 0 and k = n have closed forms: 0 .. z²/(n+z²).
	z2 := z95 * z95
	if _, high := Wilson(0, 50); !near(high, z2/(50+z2), 1e-15) {
		t.Errorf("Wilson(0, 50) high = %v, want %v", high, z2/(50+z2))
	}
}

// The chi-squared survival function against closed forms: for 2 degrees of
// freedom P(X ≥ x) = e^(-x/2), for 4 it is e^(-x/2)(1 + x/2), for 1 it is
// erfc(√(x/2)); and against the textbook 5% critical values.
func TestChiSquaredSurvival(t *testing.T) {
	for _, x := range []float64{0.001, 0.5, 1, 2, 3.3, 5, 10, 25, 80} {
		if got, want := ChiSquaredSurvival(x, 2), math.Exp(-x/2); !near(got, want, 1e-13) {
			t.Errorf("Q(x=%v, df=2) = %v, want %v", x, got, want)
		}
		if got, want := ChiSquaredSurvival(x, 4), math.Exp(-x/2)*(1+x/2); !near(got, want, 1e-13) {
			t.Errorf("Q(x=%v, df=4) = %v, want %v", x, got, want)
		}
		if got, want := ChiSquaredSurvival(x, 1), math.Erfc(math.Sqrt(x/2)); !near(got, want, 1e-13) {
			t.Errorf("Q(x=%v, df=1) = %v, want %v", x, got, want)
		}
	}
	for _, c := range []struct{ x, df float64 }{
		{3.841458820694124, 1}, {5.991464547107979, 2}, {7.814727903251178, 3}, {9.487729036781154, 4}, {11.070497693516351, 5},
	} {
		if got := ChiSquaredSurvival(c.x, c.df); !near(got, 0.05, 1e-12) {
			t.Errorf("Q(%v, df=%v) = %v, want 0.05", c.x, c.df, got)
		}
	}
	if ChiSquaredSurvival(0, 3) != 1 {
		t.Error("Q(0) must be 1")
	}
}

// The two-proportion test against R: prop.test(c(15, 25), c(50, 50), correct =
// FALSE) gives X-squared = 4.1667, p-value = 0.04123 (z = 2.0412).
func TestTwoProportionP(t *testing.T) {
	if got := TwoProportionP(15, 50, 25, 50); !near(got, 0.041227, 0.000001) {
		t.Errorf("TwoProportionP(15/50, 25/50) = %v, want 0.041227", got)
	}
	// z = 1.959963985 exactly: k1/n1 − k2/n2 over the pooled error. Symmetry
	// and the undefined cases.
	if TwoProportionP(15, 50, 25, 50) != TwoProportionP(25, 50, 15, 50) {
		t.Error("not symmetric")
	}
	for _, c := range [][4]int64{{0, 0, 3, 10}, {0, 10, 0, 10}, {10, 10, 5, 5}} {
		if got := TwoProportionP(c[0], c[1], c[2], c[3]); got != 1 {
			t.Errorf("TwoProportionP%v = %v, want 1 (undefined)", c, got)
		}
	}
	if got := TwoProportionP(30, 30, 0, 30); got > 1e-12 {
		t.Errorf("30/30 vs 0/30: p = %v, want ≈ 0", got)
	}
}

// Pearson's chi-squared on a 2×k table: with two groups it is the
// two-proportion test; with three, against R's chisq.test(matrix(c(10, 40, 20,
// 30, 30, 20), nrow = 2)) = X-squared 16.667, df 2, p-value 0.0002404
// (df 2 has the closed form e^(-x/2)).
func TestChiSquaredP(t *testing.T) {
	for _, c := range [][4]int64{{15, 50, 25, 50}, {9, 30, 14, 31}, {1, 7, 60, 200}} {
		two := TwoProportionP(c[0], c[1], c[2], c[3])
		chi := ChiSquaredP([]int64{c[0], c[2]}, []int64{c[1], c[3]})
		if !near(two, chi, 1e-12) {
			t.Errorf("%v: chi-squared p %v ≠ two-proportion p %v", c, chi, two)
		}
	}
	got := ChiSquaredP([]int64{10, 20, 30}, []int64{50, 50, 50})
	if want := math.Exp(-50.0 / 3 / 2); !near(got, want, 1e-15) || !near(got, 0.0002404, 0.0000001) {
		t.Errorf("ChiSquaredP(10/50, 20/50, 30/50) = %v, want %v", got, want)
	}
	if got := ChiSquaredP([]int64{3, 0, 4}, []int64{10, 0, 10}); !near(got, TwoProportionP(3, 10, 4, 10), 1e-12) {
		t.Errorf("an empty group must be left out: %v", got)
	}
	if ChiSquaredP([]int64{0, 0, 0}, []int64{5, 5, 5}) != 1 || ChiSquaredP([]int64{2}, []int64{5}) != 1 {
		t.Error("no variation or one group: p must be 1")
	}
}

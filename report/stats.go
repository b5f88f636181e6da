package report

import "math"

// z95 is the standard normal quantile of 0.975: a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson is the Wilson score interval of k successes in n trials at 95%
// (Wilson 1927, without continuity correction: the interval Newcombe 1998
// calls method 3). Unlike the normal approximation it stays inside [0, 1] and
// is useful for small n and rates near 0 or 1. n = 0 gives (0, 1).
func Wilson(k, n int64) (low, high float64) {
	if n <= 0 {
		return 0, 1
	}
	p, nf, z2 := float64(k)/float64(n), float64(n), z95*z95
	denom := 1 + z2/nf
	center := (p + z2/(2*nf)) / denom
	half := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / denom
	return math.Max(0, center-half), math.Min(1, center+half)
}

// TwoProportionP is the two-sided p-value of the pooled two-proportion z-test
// of k1/n1 against k2/n2 (equal to Pearson's chi-squared test of the 2×2
// table without continuity correction). It is 1 when the test is undefined
// (an empty group, or every trial a success or every one a failure).
func TwoProportionP(k1, n1, k2, n2 int64) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	p := float64(k1+k2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 1
	}
	z := (float64(k1)/float64(n1) - float64(k2)/float64(n2)) / se
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// ChiSquaredP is the p-value of Pearson's chi-squared test of homogeneity of
// the 2×k table (converted, not converted) × groups: does the rate differ
// between any of the k groups? Groups with no trials are left out; fewer than
// two groups left, or no variation at all, gives 1.
func ChiSquaredP(k, n []int64) float64 {
	var K, N int64
	groups := 0
	for i := range n {
		if n[i] > 0 {
			K += k[i]
			N += n[i]
			groups++
		}
	}
	if groups < 2 || K == 0 || K == N {
		return 1
	}
	p := float64(K) / float64(N)
	var x2 float64
	for i := range n {
		if n[i] <= 0 {
			continue
		}
		e1, e0 := float64(n[i])*p, float64(n[i])*(1-p)
		o1, o0 := float64(k[i]), float64(n[i]-k[i])
		x2 += (o1-e1)*(o1-e1)/e1 + (o0-e0)*(o0-e0)/e0
	}
	return ChiSquaredSurvival(x2, float64(groups-1))
}

// ChiSquaredSurvival is P(X ≥ x) for X chi-squared with df degrees of
// freedom: the regularized upper incomplete gamma function Q(df/2, x/2).
func ChiSquaredSurvival(x, df float64) float64 {
	if x <= 0 {
		return 1
	}
	return gammaQ(df/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x), by its
// series below a+1 and its continued fraction above (Numerical Recipes §6.2),
// both to full double precision.
func gammaQ(a, x float64) float64 {
	if x <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	front := math.Exp(a*math.Log(x) - x - lg)
	if x < a+1 {
		// P(a, x) = e^-x x^a / Γ(a+1) Σ x^n / ((a+1)…(a+n))
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-16 {
				break
			}
		}
		return math.Max(0, 1-sum*front)
	}
	// Lentz's method for the continued fraction of Q.
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return front * h
}

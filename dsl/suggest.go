package dsl

import "strings"

// nearest returns the candidate closest to s by edit distance, when it is close
// enough to be a plausible typo ("" otherwise).
func nearest(s string, candidates []string) string {
	if s == "" {
		return "" // every candidate starts with ""
	}
	best, bestD := "", 0
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	limit := len([]rune(s))/3 + 1
	if limit > 3 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	// Too far for a typo: an abbreviation of three letters or more (`quiet` for
	// `quiet_hours`) is still plausible. The shortest candidate that starts with
	// it, if any.
	best = ""
	if len([]rune(s)) < 3 {
		return ""
	}
	for _, c := range candidates {
		if strings.HasPrefix(strings.ToLower(c), ls) && (best == "" || len(c) < len(best)) {
			best = c
		}
	}
	return best
}

// didYouMean formats the usual hint: "; did you mean `x`?" or "".
func didYouMean(s string, candidates []string) string {
	if n := nearest(s, candidates); n != "" && n != s {
		return "; did you mean `" + n + "`?"
	}
	return ""
}

// DidYouMean is the same hint for other packages (conversation scripts).
func DidYouMean(s string, candidates []string) string { return didYouMean(s, candidates) }

// Nearest is nearest for other packages (the daemon's settings): one notion of
// a plausible typo across the product.
func Nearest(s string, candidates []string) string { return nearest(s, candidates) }

// EditDistance is editDistance for other packages.
func EditDistance(a, b string) int { return editDistance(a, b) }

// editDistance is the Damerau-Levenshtein (optimal string alignment) distance.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 64
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

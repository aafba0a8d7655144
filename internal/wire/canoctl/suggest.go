package canoctl

import "strings"

// Suggestions for a mistyped name: a command word, a workflow.

// didYouMean is " (did you mean PREFIX NAME?)" for the name closest to
// word, or "" when none is close.
func didYouMean(word string, names []string, prefix string) string {
	if n := closest(word, names); n != "" {
		return " (did you mean " + prefix + n + "?)"
	}
	return ""
}

// closest returns the name in names nearest to word, a mistyped one: the
// first of the fewest edits (case aside), within 1 for a word of up to 3
// letters, 2 up to 7 and 3 beyond; else the only name word begins (of 3
// letters or more); else "". It is a pure function.
func closest(word string, names []string) string {
	w := strings.ToLower(word)
	limit := 3
	switch n := len([]rune(w)); {
	case n <= 3:
		limit = 1
	case n <= 7:
		limit = 2
	}
	best, bestD := "", limit+1
	var prefixed []string
	for _, name := range names {
		if name == word {
			continue
		}
		n := strings.ToLower(name)
		if d := editDistance(w, n); d < bestD {
			best, bestD = name, d
		}
		if len(w) >= 3 && strings.HasPrefix(n, w) {
			prefixed = append(prefixed, name)
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

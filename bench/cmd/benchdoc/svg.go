package main

import (
	"fmt"
	"html"
	"strings"
)

// bar is one row of a horizontal bar chart; class is "" (peer), "me"
// (jwtgate) or "ref" (a reference floor).
type bar struct {
	label string
	value float64
	class string
}

// barChart draws a horizontal bar chart as a self-contained SVG.
func barChart(title, unit string, bars []bar) string {
	const (
		width  = 760
		labelW = 200
		rowH   = 26
		top    = 40
		right  = 90
	)
	height := top + rowH*len(bars) + 16
	maxV := 0.0
	for _, b := range bars {
		maxV = max(maxV, b.value)
	}
	if maxV == 0 {
		maxV = 1
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	s.WriteString(`<style>.peer{fill:#9aa5b1}.me{fill:#2b7bb9}.ref{fill:#d9a441}text{fill:#222}</style>` + "\n")
	fmt.Fprintf(&s, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(&s, `<text x="10" y="22" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	span := float64(width - labelW - right)
	for i, b := range bars {
		y := top + i*rowH
		cls := b.class
		if cls == "" {
			cls = "peer"
		}
		w := b.value / maxV * span
		if w < 1 {
			w = 1
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+17, html.EscapeString(b.label))
		fmt.Fprintf(&s, `<rect class="%s" x="%d" y="%d" width="%.1f" height="%d"/>`+"\n", cls, labelW, y+4, w, rowH-8)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s %s</text>`+"\n", float64(labelW)+w+6, y+17, fmtVal(b.value), html.EscapeString(unit))
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func fmtVal(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

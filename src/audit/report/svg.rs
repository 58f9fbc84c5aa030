//! Small inline SVG plots: no script, no network, readable when printed.

use std::fmt::Write;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const FONT: &str = "font-family=\"system-ui, sans-serif\" font-size=\"12\"";

/// A heat map of a confusion matrix: rows the reference, columns the prediction.
pub fn confusion(
    labels: &[String],
    counts: &[Vec<u64>],
    row_title: &str,
    col_title: &str,
) -> String {
    let n = labels.len();
    let cell = 56.0;
    let (left, top) = (90.0, 50.0);
    let w = left + cell * n as f64 + 20.0;
    let h = top + cell * n as f64 + 30.0;
    let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let mut s = svg_open(w, h, "confusion matrix");
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"16\" text-anchor=\"middle\" {FONT}>{} →</text>",
        left + cell * n as f64 / 2.0,
        escape(col_title)
    );
    let _ = write!(
        s,
        "<text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\" {FONT}>{} →</text>",
        top + cell * n as f64 / 2.0,
        top + cell * n as f64 / 2.0,
        escape(row_title)
    );
    for (j, l) in labels.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" {FONT}>{}</text>",
            left + cell * (j as f64 + 0.5),
            top - 8.0,
            escape(l)
        );
    }
    for (i, row) in counts.iter().enumerate() {
        let y = top + cell * i as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" {FONT}>{}</text>",
            left - 8.0,
            y + cell / 2.0 + 4.0,
            escape(&labels[i])
        );
        for (j, &c) in row.iter().enumerate() {
            let x = left + cell * j as f64;
            let t = c as f64 / max;
            let fill = if i == j {
                format!("rgba(46,125,50,{:.3})", 0.08 + 0.85 * t)
            } else {
                format!("rgba(198,40,40,{:.3})", 0.05 + 0.85 * t)
            };
            let ink = if t > 0.55 { "#fff" } else { "#222" };
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{fill}\" stroke=\"#fff\">\
                 <title>{} → {}: {c}</title></rect>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{ink}\" {FONT}>{c}</text>",
                escape(&labels[i]),
                escape(&labels[j]),
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, one per (name, value), longest first as given.
pub fn bars(items: &[(String, f64)], unit: &str, title: &str) -> String {
    let row = 22.0;
    let (left, width) = (220.0, 320.0);
    let h = 10.0 + row * items.len().max(1) as f64;
    let max = items
        .iter()
        .map(|i| i.1)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut s = svg_open(left + width + 80.0, h, title);
    if items.is_empty() {
        let _ = write!(s, "<text x=\"10\" y=\"20\" {FONT}>nothing yet</text>");
    }
    for (k, (name, v)) in items.iter().enumerate() {
        let y = 5.0 + row * k as f64;
        let w = (v / max * width).max(1.0);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" {FONT}>{}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"#1565c0\"><title>{}: {v}{unit}</title></rect>\
             <text x=\"{}\" y=\"{}\" {FONT}>{}{unit}</text>",
            left - 8.0,
            y + 14.0,
            escape(name),
            row - 6.0,
            escape(name),
            left + w + 6.0,
            y + 14.0,
            trim_number(*v),
        );
    }
    s.push_str("</svg>");
    s
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Axes of a unit square plot: returns (svg so far, map from data to pixels).
fn unit_axes(
    title: &str,
    x_title: &str,
    y_title: &str,
) -> (String, impl Fn(f64, f64) -> (f64, f64)) {
    let (left, top, size) = (50.0, 20.0, 300.0);
    let mut s = svg_open(left + size + 30.0, top + size + 45.0, title);
    let _ = write!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{size}\" height=\"{size}\" fill=\"#fafafa\" stroke=\"#999\"/>"
    );
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let x = left + v * size;
        let y = top + size - v * size;
        let _ = write!(
            s,
            "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{}\" stroke=\"#e0e0e0\"/>\
             <line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e0e0e0\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" {FONT}>{v}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" {FONT}>{v}</text>",
            top + size,
            left + size,
            top + size + 16.0,
            left - 6.0,
            y + 4.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" {FONT}>{}</text>\
         <text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\" {FONT}>{}</text>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{top}\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>",
        left + size / 2.0,
        top + size + 36.0,
        escape(x_title),
        top + size / 2.0,
        top + size / 2.0,
        escape(y_title),
        top + size,
        left + size
    );
    (s, move |x: f64, y: f64| {
        (
            left + x.clamp(0.0, 1.0) * size,
            top + size - y.clamp(0.0, 1.0) * size,
        )
    })
}

/// A reliability diagram: mean confidence against accuracy per bin, dot area by count.
pub fn reliability(bins: &[(f64, f64, u64)]) -> String {
    let (mut s, at) = unit_axes("calibration curve", "teacher confidence", "accuracy");
    let max = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
    let points: Vec<(f64, f64)> = bins
        .iter()
        .filter(|b| b.2 > 0)
        .map(|b| at(b.0, b.1))
        .collect();
    if points.len() > 1 {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>",
            path.join(" ")
        );
    }
    for b in bins.iter().filter(|b| b.2 > 0) {
        let (x, y) = at(b.0, b.1);
        let r = 3.0 + 7.0 * (b.2 as f64 / max).sqrt();
        let _ = write!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"#1565c0\" fill-opacity=\"0.6\">\
             <title>confidence {:.2}, accuracy {:.2}, {} pairs</title></circle>",
            b.0, b.1, b.2
        );
    }
    s.push_str("</svg>");
    s
}

/// A scatter of (x, y) points in the unit square.
pub fn scatter(points: &[(f64, f64)], x_title: &str, y_title: &str) -> String {
    let (mut s, at) = unit_axes("score scatter", x_title, y_title);
    for &(a, b) in points {
        let (x, y) = at(a, b);
        let _ = write!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#6a1b9a\" fill-opacity=\"0.45\"/>"
        );
    }
    s.push_str("</svg>");
    s
}

fn svg_open(w: f64, h: f64, label: &str) -> String {
    format!(
        "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<b>\"&'"), "&lt;b&gt;&quot;&amp;&#39;");
        let svg = bars(&[("<script>".into(), 2.0)], "", "t");
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn confusion_has_one_cell_per_pair_of_labels() {
        let labels = vec!["E".to_string(), "I".to_string()];
        let svg = confusion(&labels, &[vec![3, 1], vec![0, 2]], "human", "teacher");
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("E → I: 1"));
    }
}

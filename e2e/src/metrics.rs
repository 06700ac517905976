//! Reading Prometheus / OpenMetrics text as tests need it: the sum of the
//! samples of one metric whose labels include the given pairs, and the
//! metric families an exposition declares.
//!
//! Kept hand-written rather than `prometheus-parse` 0.2.5 (the only Rust
//! parser of the text format; one maintainer, last release early 2024): it
//! reads the Prometheus 0.0.4 format, not OpenMetrics as prometheus-client
//! writes it. It keys types by the `# TYPE` name, so a counter `x` whose
//! samples are `x_total` comes back untyped, `info` families are untyped,
//! and it drops the family names we compare with docs/metrics.md; and it
//! brings regex, chrono and itertools into the build for the ~80 lines these
//! tests need.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric (sample) name, e.g. `causeway_requests_total`.
    pub name: String,
    /// Label pairs in order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Parses every sample line of an exposition (comments skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => {
            let (n, v) = line.split_once(' ')?;
            return Some(Sample {
                name: n.to_owned(),
                labels: Vec::new(),
                value: first_number(v)?,
            });
        }
    };
    let close = rest.rfind('}')?;
    let labels = parse_labels(&rest[1..close]);
    let value = first_number(&rest[close + 1..])?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn first_number(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 2..];
        let mut value = String::new();
        let mut end = after.len();
        let mut chars = after.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key, value));
        rest = &after[end.min(after.len())..];
    }
    out
}

/// The metric families declared by `# TYPE` lines, by the name a query
/// uses (OpenMetrics declares a counter `x` whose samples are `x_total`,
/// an info `x` whose sample is `x_info`), with their type.
pub fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, ty)| {
            let ty = ty.trim();
            let name = match ty {
                "counter" if !name.ends_with("_total") => format!("{name}_total"),
                "info" if !name.ends_with("_info") => format!("{name}_info"),
                _ => name.to_owned(),
            };
            (name, ty.to_owned())
        })
        .collect()
}

/// The sum of samples named `name` whose labels include every pair of `labels`.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse(text)
        .into_iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
        .sum::<f64>()
        + 0.0 // an empty f64 sum is -0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_samples() {
        let text = "# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"\"} 2\nx_total{a=\"1\",b=\"z\"} 3\nx_total{a=\"2\"} 7\ny 1.5\n# EOF\n";
        assert_eq!(sum(text, "x_total", &[("a", "1")]), 5.0);
        assert_eq!(sum(text, "x_total", &[("b", "q\"")]), 2.0);
        assert_eq!(sum(text, "y", &[]), 1.5);
        assert_eq!(sum(text, "x_total", &[("a", "3")]), 0.0);
    }

    #[test]
    fn families_use_the_queried_names() {
        let text = "# HELP x A.\n# TYPE x counter\nx_total 1\n# TYPE b info\nb_info{v=\"1\"} 1\n\
                    # TYPE h histogram\nh_sum 0\n# TYPE g gauge\n# EOF\n";
        let f = families(text);
        let names: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            names,
            [
                ("b_info", "info"),
                ("g", "gauge"),
                ("h", "histogram"),
                ("x_total", "counter")
            ]
        );
    }
}

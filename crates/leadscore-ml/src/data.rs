//! The training table: columns of numbers or categories and the outcome.

use std::collections::HashSet;

/// Raw cells as read from a file: a header and rows of text.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub names: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One usable column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; `NaN` where the cell is blank.
    Numeric { name: String, values: Vec<f64> },
    /// Categories as codes into `levels`; `None` where the cell is blank.
    Categorical {
        name: String,
        levels: Vec<String>,
        codes: Vec<Option<u32>>,
    },
}

impl Column {
    pub fn name(&self) -> &str {
        match self {
            Column::Numeric { name, .. } | Column::Categorical { name, .. } => name,
        }
    }
}

/// Columns ready to learn from, and the outcome of each row.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub columns: Vec<Column>,
    pub target: Vec<bool>,
    /// Columns left out, with the reason (identifiers, constant, excluded).
    pub dropped: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DataError {
    #[error("there is no column `{0}` (the target)")]
    NoTarget(String),
    #[error("there is no column `{0}` to exclude")]
    NoColumn(String),
    #[error(
        "row {row}: the target `{value}` is not an outcome (1/0, true/false, yes/no, won/lost, converted)"
    )]
    BadTarget { row: usize, value: String },
    #[error("row {row}: {found} cells where the header has {expected}")]
    Ragged {
        row: usize,
        found: usize,
        expected: usize,
    },
    #[error("no rows to learn from")]
    Empty,
}

/// Cells that mean "no value": blanks and the placeholders forms and
/// spreadsheets leave behind (an unselected drop-down says "Select").
pub fn is_missing(cell: &str) -> bool {
    const PLACEHOLDERS: [&str; 10] = [
        "na",
        "n/a",
        "nan",
        "null",
        "none",
        "-",
        "select",
        "--select--",
        "please select",
        "(not set)",
    ];
    let c = cell.trim();
    c.is_empty() || (c.len() <= 13 && PLACEHOLDERS.iter().any(|p| c.eq_ignore_ascii_case(p)))
}

fn parse_target(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" | "yes" | "y" | "won" | "converted" => Some(true),
        "0" | "0.0" | "false" | "no" | "n" | "lost" | "not converted" => Some(false),
        _ => None,
    }
}

fn parse_number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

impl Dataset {
    /// Builds the dataset: `target` is the outcome column; `exclude` names
    /// columns to leave out. A column is numeric when every non-blank cell
    /// is a number, else categorical. Identifiers (a different value on
    /// every row) and constant columns are left out, with the reason.
    pub fn from_table(table: &Table, target: &str, exclude: &[String]) -> Result<Dataset, DataError> {
        let t = table
            .names
            .iter()
            .position(|n| n == target)
            .ok_or_else(|| DataError::NoTarget(target.to_owned()))?;
        for e in exclude {
            if !table.names.contains(e) {
                return Err(DataError::NoColumn(e.clone()));
            }
        }
        if table.rows.is_empty() {
            return Err(DataError::Empty);
        }
        for (i, r) in table.rows.iter().enumerate() {
            if r.len() != table.names.len() {
                return Err(DataError::Ragged {
                    row: i + 2,
                    found: r.len(),
                    expected: table.names.len(),
                });
            }
        }
        let target_values = table
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_target(&r[t]).ok_or_else(|| DataError::BadTarget {
                    row: i + 2,
                    value: r[t].clone(),
                })
            })
            .collect::<Result<Vec<bool>, _>>()?;
        let mut out = Dataset {
            target: target_values,
            ..Dataset::default()
        };
        let n = table.rows.len();
        for (c, name) in table.names.iter().enumerate() {
            if c == t {
                continue;
            }
            if exclude.contains(name) {
                out.dropped.push((name.clone(), "excluded".into()));
                continue;
            }
            let cells: Vec<&str> = table.rows.iter().map(|r| r[c].as_str()).collect();
            let present: Vec<&str> = cells.iter().copied().filter(|c| !is_missing(c)).collect();
            let distinct: HashSet<&str> = present.iter().map(|c| c.trim()).collect();
            if distinct.len() <= 1 && present.len() == n {
                out.dropped
                    .push((name.clone(), "the same value on every row".into()));
                continue;
            }
            if present.is_empty() {
                out.dropped.push((name.clone(), "always blank".into()));
                continue;
            }
            let numeric = present.iter().all(|c| parse_number(c).is_some());
            let integral = numeric
                && present
                    .iter()
                    .all(|c| parse_number(c).is_some_and(|v| v.fract() == 0.0));
            if distinct.len() == n && (!numeric || integral) {
                out.dropped.push((
                    name.clone(),
                    "an identifier (a different value on every row)".into(),
                ));
                continue;
            }
            if numeric {
                out.columns.push(Column::Numeric {
                    name: name.clone(),
                    values: cells
                        .iter()
                        .map(|c| {
                            if is_missing(c) {
                                f64::NAN
                            } else {
                                parse_number(c).unwrap_or(f64::NAN)
                            }
                        })
                        .collect(),
                });
            } else {
                let mut levels: Vec<String> = Vec::new();
                let mut index = std::collections::HashMap::new();
                let codes = cells
                    .iter()
                    .map(|c| {
                        if is_missing(c) {
                            return None;
                        }
                        let key = c.trim();
                        Some(*index.entry(key.to_owned()).or_insert_with(|| {
                            levels.push(key.to_owned());
                            (levels.len() - 1) as u32
                        }))
                    })
                    .collect();
                out.columns.push(Column::Categorical {
                    name: name.clone(),
                    levels,
                    codes,
                });
            }
        }
        Ok(out)
    }

    pub fn rows(&self) -> usize {
        self.target.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(names: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
                .collect(),
        }
    }

    #[test]
    fn columns_are_typed_and_identifiers_dropped() {
        let t = table(
            &["id", "visits", "source", "same", "won"],
            &[
                &["a1", "3", "Google", "x", "1"],
                &["a2", "", "Select", "x", "0"],
                &["a3", "7.5", "Google", "x", "yes"],
            ],
        );
        let d = Dataset::from_table(&t, "won", &[]).unwrap();
        assert_eq!(d.target, [true, false, true]);
        assert_eq!(d.columns.len(), 2);
        match &d.columns[0] {
            Column::Numeric { name, values } => {
                assert_eq!(name, "visits");
                assert!(values[1].is_nan());
            }
            other => panic!("{other:?}"),
        }
        match &d.columns[1] {
            Column::Categorical { codes, levels, .. } => {
                assert_eq!(levels, &["Google"]);
                assert_eq!(codes, &[Some(0), None, Some(0)]);
            }
            other => panic!("{other:?}"),
        }
        let dropped: Vec<&str> = d.dropped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(dropped, ["id", "same"]);
        assert_eq!(
            Dataset::from_table(&t, "nope", &[]).unwrap_err(),
            DataError::NoTarget("nope".into())
        );
        let bad = table(&["a", "won"], &[&["1", "maybe"]]);
        assert!(matches!(
            Dataset::from_table(&bad, "won", &[]),
            Err(DataError::BadTarget { row: 2, .. })
        ));
    }
}

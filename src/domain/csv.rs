//! CSV for spreadsheets (RFC 4180 quoting), safe to open: a cell that a
//! spreadsheet would run as a formula is prefixed with a quote mark.

pub fn row(cells: &[String]) -> String {
    let mut line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_separators_and_defuses_formulas() {
        let cells = ["Acme, Inc.".to_string(), "say \"hi\"".into(), "=HYPERLINK(\"x\")".into(), "42".into()];
        assert_eq!(row(&cells), "\"Acme, Inc.\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",42\r\n");
    }
}

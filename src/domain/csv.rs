//! CSV for spreadsheets (RFC 4180 quoting), safe to open: a cell that a
//! spreadsheet would run as a formula is prefixed with a quote mark.
//!
//! Every cell is quoted, not only those holding a comma: spreadsheets in
//! locales whose list separator is `;` split unquoted cells on it, shifting
//! every column after a shop named "Müller; Söhne".

pub fn row(cells: &[String]) -> String {
    let mut line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    format!("\"{}\"", value.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_separators_and_defuses_formulas() {
        let cells = ["Acme, Inc.".to_string(), "say \"hi\"".into(), "=HYPERLINK(\"x\")".into(), "42".into()];
        assert_eq!(row(&cells), "\"Acme, Inc.\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",\"42\"\r\n");
    }

    #[test]
    fn every_cell_is_quoted_so_semicolon_locales_keep_the_columns() {
        let cells = ["Müller; Söhne".to_string(), "12".into(), String::new()];
        assert_eq!(row(&cells), "\"Müller; Söhne\",\"12\",\"\"\r\n");
    }
}

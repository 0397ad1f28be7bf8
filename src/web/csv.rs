//! CSV exports, streamed: rows are read a page at a time, each page a query of its own that
//! starts where the last one ended (keyset paging), and written as they come. An export holds
//! every matching row, however many: it never sits whole in memory, is never refused for its
//! size, and a failure part way ends the download visibly. No cell is one a spreadsheet would
//! run as a formula.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::{stream, StreamExt};

use crate::db::DbError;

/// Rows read per query.
pub const PAGE: i64 = 2_000;

/// What makes a spreadsheet evaluate a cell when it starts one.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell as written: a leading = + - @ (or tab/CR) makes spreadsheets evaluate the cell, and a
/// quote in front defuses it. Where `;` separates cells (Excel wherever `,` is the decimal mark)
/// what follows a `;` starts a cell too, whatever the quoting, and is defused the same way.
/// Quoting is the csv writer's.
pub fn defused(value: &str) -> String {
    let mut cell = String::with_capacity(value.len() + 1);
    if value.starts_with(FORMULA_START) {
        cell.push('\'');
    }
    for (i, c) in value.char_indices() {
        cell.push(c);
        let next = value[i + c.len_utf8()..].trim_start_matches(['"', ' ']);
        if c == ';' && next.starts_with(FORMULA_START) {
            cell.push('\'');
        }
    }
    cell
}

fn encode(rows: &[Vec<String>]) -> Bytes {
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        // Writing into memory cannot fail.
        let _ = writer.write_record(row.iter().map(|cell| defused(cell)));
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

/// A CSV download: `header_row`, then the pages `next(export)` reads from `export` until it
/// answers `None`. A page that fails ends the response with an error, so the download fails
/// rather than looking complete.
pub fn streamed<E, F, Fut>(
    filename: &str,
    header_row: &[&str],
    export: E,
    mut next: F,
) -> HttpResponse
where
    E: 'static,
    F: FnMut(E) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<Option<(Vec<Vec<String>>, E)>, DbError>> + 'static,
{
    let head = encode(&[header_row.iter().map(|h| (*h).to_owned()).collect()]);
    let pages = stream::unfold(Some(export), move |export| {
        let read = export.map(&mut next);
        async move {
            match read?.await {
                Ok(Some((rows, export))) => Some((Ok(encode(&rows)), Some(export))),
                Ok(None) => None,
                Err(e) => {
                    // The error names the query's failure, never a row's contents.
                    tracing::error!(error = %e, "a CSV export stopped part way");
                    Some((Err(actix_web::error::ErrorServiceUnavailable(e)), None))
                }
            }
        }
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(stream::once(async { Ok::<_, actix_web::Error>(head) }).chain(pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page is written, in order, until the reader says there is no more.
    #[actix_web::test]
    async fn streams_every_page_until_the_end() {
        for total in [4_500_i64, PAGE, 0] {
            let response = streamed("x.csv", &["n"], 0_i64, move |from| async move {
                let end = (from + PAGE).min(total);
                let rows = (from..end).map(|n| vec![n.to_string()]).collect();
                Ok((from < total).then_some((rows, end)))
            });
            let body = actix_web::body::to_bytes(response.into_body())
                .await
                .unwrap();
            let lines: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
            let expected: Vec<String> = std::iter::once("n".to_owned())
                .chain((0..total).map(|n| n.to_string()))
                .collect();
            assert_eq!(lines, expected, "{total} rows");
        }
    }

    /// A page that fails ends the body with an error, after what was written.
    #[actix_web::test]
    async fn a_failed_page_fails_the_download() {
        let response = streamed("x.csv", &["n"], 0_i64, |from| async move {
            if from == 0 {
                Ok(Some((vec![vec!["0".to_owned()]], 1)))
            } else {
                Err(DbError::Unavailable("gone".into()))
            }
        });
        assert!(actix_web::body::to_bytes(response.into_body())
            .await
            .is_err());
    }

    #[test]
    fn quotes_and_defuses() {
        let row = |cells: &[&str]| {
            let encoded = encode(&[cells.iter().map(|c| c.to_string()).collect()]);
            String::from_utf8(encoded.to_vec()).unwrap()
        };
        assert_eq!(row(&["plain", "a,b"]), "plain,\"a,b\"\r\n");
        assert_eq!(row(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(row(&["=HYPERLINK(1)"]), "'=HYPERLINK(1)\r\n");
        assert_eq!(row(&["-1,2"]), "\"'-1,2\"\r\n");
        assert_eq!(row(&["ci;=1+2;x…"]), "ci;'=1+2;x…\r\n");
        assert_eq!(row(&["a; \"@b"]), "\"a;' \"\"@b\"\r\n");
    }
}

//! CSV exports, streamed: rows are read a page at a time and written as they come, so an export
//! of 200,000 tokens never sits whole in memory. No cell is one a spreadsheet would run as a
//! formula.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::{stream, StreamExt};

use crate::db::DbError;

/// Rows read per query.
const PAGE: i64 = 2_000;
/// The most rows one export holds: more is refused with a message, never cut short silently.
pub const MAX_ROWS: i64 = 200_000;

/// Refuses an export of `total` rows beyond [`MAX_ROWS`], saying how to get them all.
pub fn within_limit(total: i64, what: &str) -> Result<(), crate::web::error::AppError> {
    if total <= MAX_ROWS {
        return Ok(());
    }
    Err(crate::web::error::AppError::BadRequest(format!(
        "This selection holds {total} {what}; one export holds at most {MAX_ROWS}. \
         Narrow it with the filters and export each part."
    )))
}

/// A cell as written: a leading = + - @ (or tab/CR) makes spreadsheets evaluate the cell, and a
/// quote in front defuses it. Quoting is the csv writer's.
pub fn defused(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
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

/// A CSV download of at most `limit` rows: `header_row`, then the rows `page(offset, count)`
/// reads, page by page, until one comes back short.
pub fn streamed<F, Fut>(
    filename: &str,
    header_row: &[&str],
    limit: i64,
    mut page: F,
) -> HttpResponse
where
    F: FnMut(i64, i64) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<Vec<Vec<String>>, DbError>> + 'static,
{
    let head = encode(&[header_row.iter().map(|h| (*h).to_owned()).collect()]);
    let pages = stream::unfold(Some(0), move |next| {
        let read = next.map(|offset| (offset, page(offset, PAGE.min(limit - offset))));
        async move {
            let (offset, read) = read?;
            match read.await {
                Ok(rows) => {
                    let end = offset + rows.len() as i64;
                    let more = rows.len() as i64 == PAGE && end < limit;
                    Some((Ok(encode(&rows)), more.then_some(end)))
                }
                Err(e) => {
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

    /// Pages are read until one comes back short, never past the limit, in order.
    #[actix_web::test]
    async fn streams_every_page_up_to_the_limit() {
        for (total, limit) in [
            (4_500_i64, 10_000_i64),
            (4_500, 4_100),
            (PAGE, 10_000),
            (0, 10),
        ] {
            let response = streamed("x.csv", &["n"], limit, move |offset, count| async move {
                let end = (offset + count).min(total);
                Ok((offset..end).map(|n| vec![n.to_string()]).collect())
            });
            let body = actix_web::body::to_bytes(response.into_body())
                .await
                .unwrap();
            let lines: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
            let expected = total.min(limit);
            assert_eq!(
                lines.len() as i64,
                expected + 1,
                "{total} rows, limit {limit}"
            );
            assert_eq!(lines[0], "n");
            if expected > 0 {
                assert_eq!(lines[expected as usize], (expected - 1).to_string());
            }
        }
    }

    #[test]
    fn an_export_beyond_the_limit_is_refused_with_what_to_do() {
        assert!(within_limit(MAX_ROWS, "tokens").is_ok());
        let refused = within_limit(MAX_ROWS + 1, "tokens")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("200001 tokens") && refused.contains("Narrow it"),
            "{refused}"
        );
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
    }
}

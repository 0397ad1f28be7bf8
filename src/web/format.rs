//! How times and counts read on the pages. Stored times are UTC.

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};

// Written out rather than through `format("%b …")`, which parses its pattern on every call:
// a page of 50 tokens formats a few hundred times.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// "Nov 5, 2026".
pub fn date(at: NaiveDateTime) -> String {
    format!(
        "{} {}, {}",
        MONTHS[at.month0() as usize],
        at.day(),
        at.year()
    )
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// "Sat, Dec 26, 2026".
pub fn day(at: NaiveDateTime) -> String {
    format!(
        "{}, {}",
        WEEKDAYS[at.weekday().num_days_from_monday() as usize],
        date(at)
    )
}

/// For hover titles and exports: unambiguous, to the second.
pub fn exact(at: NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// For `<time datetime>`, which a script shows in the viewer's time zone.
pub fn iso(at: NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// "1 token", "3 tokens".
pub fn plural(n: i64, unit: &str) -> String {
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// "1 minute", "3 minutes": the wait until a paused check may run again, rounded up.
pub fn minutes_until(until: NaiveDateTime, now: NaiveDateTime) -> String {
    plural((until - now).num_minutes() + 1, "minute")
}

/// "just now", "3 minutes ago", "2 days ago", ...
pub fn ago(at: NaiveDateTime, now: NaiveDateTime) -> String {
    let elapsed = now - at;
    if elapsed < Duration::minutes(1) {
        return "just now".to_owned();
    }
    let (n, unit) = if elapsed < Duration::hours(1) {
        (elapsed.num_minutes(), "minute")
    } else if elapsed < Duration::days(1) {
        (elapsed.num_hours(), "hour")
    } else if elapsed < Duration::days(30) {
        (elapsed.num_days(), "day")
    } else if elapsed < Duration::days(365) {
        (elapsed.num_days() / 30, "month")
    } else {
        (elapsed.num_days() / 365, "year")
    };
    format!("{} ago", plural(n, unit))
}

/// "in 55 minutes", "in 6 days": how long until `at`, rounded down ("in under a minute").
pub fn from_now(at: NaiveDateTime, now: NaiveDateTime) -> String {
    let left = at - now;
    let (n, unit) = if left < Duration::minutes(1) {
        return "in under a minute".to_owned();
    } else if left < Duration::hours(1) {
        (left.num_minutes(), "minute")
    } else if left < Duration::days(1) {
        (left.num_hours(), "hour")
    } else {
        (left.num_days(), "day")
    };
    format!("in {}", plural(n, unit))
}

/// How an expiry reads in a list: the date, plus a badge when it is near or past.
pub struct ExpiryView {
    pub text: String,
    pub badge: Option<(&'static str, String)>,
    pub expired: bool,
}

impl ExpiryView {
    /// The badge of an expiry still ahead ("Expires in 3 days"), for lists whose tab or
    /// status column already says Expired.
    pub fn ahead_badge(&self) -> Option<(&'static str, &str)> {
        match &self.badge {
            Some((class, label)) if !self.expired => Some((class, label.as_str())),
            _ => None,
        }
    }
}

pub fn expiry(expires_at: Option<NaiveDateTime>, now: NaiveDateTime) -> ExpiryView {
    let Some(at) = expires_at else {
        return ExpiryView {
            text: "Never".to_owned(),
            badge: None,
            expired: false,
        };
    };
    let left = at - now;
    let badge = if left <= Duration::zero() {
        Some(("badge-danger", "Expired".to_owned()))
    } else if left < Duration::days(1) {
        Some(("badge-warning", "Expires today".to_owned()))
    } else if left <= Duration::days(7) {
        // To the nearest day: a 7-day token made a moment ago expires in 7 days, not 6.
        let days = (left + Duration::hours(12)).num_days();
        Some((
            "badge-warning",
            format!("Expires in {}", plural(days, "day")),
        ))
    } else {
        None
    };
    ExpiryView {
        text: date(at),
        badge,
        expired: left <= Duration::zero(),
    }
}

/// "Revoked in 3 days if unused": the countdown of a token the policy revokes when unused,
/// rounded as expiry badges are.
pub fn revoked_if_unused(deadline: NaiveDateTime, now: NaiveDateTime) -> String {
    // To the nearest day: a token due in 23 hours is revoked in 1 day, not today.
    let days = (deadline - now + Duration::hours(12)).num_days();
    if days < 1 {
        return "Revoked today if unused".to_owned();
    }
    format!("Revoked in {} if unused", plural(days, "day"))
}

/// A list's `?page=`: a number, or nothing. Whatever else an address holds there (`abc`, `2x`)
/// means the first page rather than an error page.
pub fn page_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    let raw = Option::<String>::deserialize(d)?;
    Ok(raw.and_then(|text| text.trim().parse().ok()))
}

/// A list page's own query: just `?page=`.
#[derive(serde::Deserialize)]
pub struct PageParam {
    #[serde(default, deserialize_with = "page_number")]
    pub page: Option<i64>,
}

/// Where a paged list is, and the links to its neighbours.
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub first_item: i64,
    pub last_item: i64,
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
}

impl Pager {
    /// `url(page)` builds the link to a page, keeping the list's other parameters.
    pub fn new(requested: i64, per_page: i64, total: i64, url: impl Fn(i64) -> String) -> Self {
        let pages = ((total + per_page - 1) / per_page).max(1);
        let page = requested.clamp(1, pages);
        let first_item = if total == 0 {
            0
        } else {
            (page - 1) * per_page + 1
        };
        Pager {
            page,
            pages,
            total,
            first_item,
            last_item: (page * per_page).min(total),
            prev_url: (page > 1).then(|| url(page - 1)),
            next_url: (page < pages).then(|| url(page + 1)),
        }
    }

    pub fn offset(&self, per_page: i64) -> i64 {
        (self.page - 1) * per_page
    }

    /// The offset of `requested`, clamped to the pages `total` rows make (for loading a page
    /// before the Pager exists).
    pub fn clamped_offset(requested: i64, per_page: i64, total: i64) -> i64 {
        let pages = ((total + per_page - 1) / per_page).max(1);
        (requested.clamp(1, pages) - 1) * per_page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(day: u32, h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    #[test]
    fn dates_read_as_before() {
        for at in [t(5, 9, 7), t(25, 23, 59), t(1, 0, 0) - Duration::days(300)] {
            assert_eq!(date(at), at.format("%b %-d, %Y").to_string());
            assert_eq!(exact(at), at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            assert_eq!(iso(at), at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        assert_eq!(date(t(5, 9, 7)), "Nov 5, 2026");
    }

    #[test]
    fn relative_times() {
        let now = t(25, 12, 0);
        assert_eq!(ago(t(25, 11, 59) + Duration::seconds(30), now), "just now");
        assert_eq!(ago(t(25, 11, 57), now), "3 minutes ago");
        assert_eq!(ago(t(25, 11, 0), now), "1 hour ago");
        assert_eq!(ago(t(20, 12, 0), now), "5 days ago");
        assert_eq!(ago(t(1, 12, 0) - Duration::days(60), now), "2 months ago");
    }

    #[test]
    fn expiry_badges() {
        let now = t(25, 12, 0);
        assert_eq!(expiry(None, now).text, "Never");
        assert_eq!(expiry(Some(t(24, 0, 0)), now).badge.unwrap().1, "Expired");
        assert_eq!(
            expiry(Some(t(28, 13, 0)), now).badge.unwrap().1,
            "Expires in 3 days"
        );
        assert_eq!(
            expiry(Some(now + Duration::days(7) - Duration::seconds(5)), now)
                .badge
                .unwrap()
                .1,
            "Expires in 7 days"
        );
        assert_eq!(
            expiry(Some(t(25, 20, 0)), now).badge.unwrap().1,
            "Expires today"
        );
        let far = expiry(Some(t(25, 12, 0) + Duration::days(30)), now);
        assert!(far.badge.is_none());
        assert_eq!(far.text, "Dec 25, 2026");
    }

    #[test]
    fn unused_countdowns() {
        let now = t(25, 12, 0);
        assert_eq!(
            revoked_if_unused(t(28, 13, 0), now),
            "Revoked in 3 days if unused"
        );
        assert_eq!(
            revoked_if_unused(now + Duration::hours(23), now),
            "Revoked in 1 day if unused"
        );
        assert_eq!(
            revoked_if_unused(t(25, 20, 0), now),
            "Revoked today if unused"
        );
        assert_eq!(
            revoked_if_unused(t(24, 0, 0), now),
            "Revoked today if unused",
            "past due: the next sweep takes it"
        );
    }

    #[test]
    fn pager_clamps_and_links() {
        let p = Pager::new(9, 50, 120, |n| format!("?page={n}"));
        assert_eq!(
            (p.page, p.pages, p.first_item, p.last_item),
            (3, 3, 101, 120)
        );
        assert_eq!(p.prev_url.as_deref(), Some("?page=2"));
        assert!(p.next_url.is_none());
        let empty = Pager::new(1, 50, 0, |n| n.to_string());
        assert_eq!((empty.pages, empty.first_item, empty.last_item), (1, 0, 0));
    }
}

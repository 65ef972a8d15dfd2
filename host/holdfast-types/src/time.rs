//! UTC timestamps with microsecond precision, stored as microseconds since the epoch
//! (portable across SQLite and PostgreSQL), printed the three ways Cinder prints them.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn subsec_micros(self) -> u32 {
        self.0.rem_euclid(1_000_000) as u32
    }

    /// (year, month, day, hour, minute, second)
    fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let secs = self.seconds();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        (y, m, d, (rem / 3600) as u32, ((rem % 3600) / 60) as u32, (rem % 60) as u32)
    }

    /// API bodies: `2025-03-01T12:00:00.000000` (six digits, no zone).
    pub fn api(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}", self.subsec_micros())
    }

    /// Export records: `2025-03-01T12:00:00Z`.
    pub fn record(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// Python's `str()` of an aware UTC datetime, as Cinder's metadata files carry it:
    /// `2025-03-01 12:00:00+00:00`, with `.ffffff` only when there are microseconds.
    pub fn python_str(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        match self.subsec_micros() {
            0 => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}+00:00"),
            us => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}+00:00"),
        }
    }

    /// `YYYYmmddHHMMSS`, as in Cinder's object-name prefixes.
    pub fn compact(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
    }

    /// Parse the forms [`Timestamp::api`] and [`Timestamp::record`] print
    /// (fraction and `Z` optional).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let t = text.trim_end_matches('Z');
        let (date, clock) = t.split_once(['T', ' '])?;
        let mut dp = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, mo, d) = (dp.next()??, dp.next()??, dp.next()??);
        let clock = clock.trim_end_matches("+00:00");
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
        let mut cp = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (h, mi, s) = (cp.next()??, cp.next()??, cp.next()??);
        if !(1..=9999).contains(&y)
            || !(1..=12).contains(&mo)
            || !(1..=31).contains(&d)
            || !(0..=23).contains(&h)
            || !(0..=59).contains(&mi)
            || !(0..=60).contains(&s)
        {
            return None;
        }
        let mut micros: i64 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
        if micros < 0 {
            return None;
        }
        micros += (days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000;
        Some(Timestamp(micros))
    }
}

// Howard Hinnant's days <-> civil date algorithms (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_cinder_forms() {
        // 2025-03-01 12:00:00 UTC
        let t = Timestamp(1_740_830_400 * 1_000_000 + 127_330);
        assert_eq!(t.api(), "2025-03-01T12:00:00.127330");
        assert_eq!(t.record(), "2025-03-01T12:00:00Z");
        assert_eq!(t.python_str(), "2025-03-01 12:00:00.127330+00:00");
        assert_eq!(Timestamp(1_740_830_400 * 1_000_000).python_str(), "2025-03-01 12:00:00+00:00");
        assert_eq!(t.compact(), "20250301120000");
    }

    #[test]
    fn parses_what_it_prints() {
        for micros in [0, 1_740_830_400_127_330, 951_782_400_000_000 /* 2000-02-29 */] {
            let t = Timestamp(micros);
            assert_eq!(Timestamp::parse(&t.api()), Some(t));
        }
        assert_eq!(Timestamp::parse("2025-03-01T12:00:00Z"), Some(Timestamp(1_740_830_400_000_000)));
        assert_eq!(Timestamp::parse("2025-13-01T12:00:00Z"), None);
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert_eq!(Timestamp::parse("300000000-01-01T00:00:00Z"), None, "would overflow");
        assert_eq!(Timestamp::parse("2025-01-01T-1:00:00Z"), None);
    }
}

//! ListTransactions (key 66), versions 0-2; flexible from 0 (ListTransactionsRequest.json,
//! ListTransactionsResponse.json, KIP-664): the transactional ids a broker coordinates, with
//! their producer id and state, filtered by state and producer id. Version 1 (KIP-994) adds
//! `DurationFilter` (only transactions running longer than it), version 2 (KIP-1152)
//! `TransactionalIdPattern` (only ids the regular expression matches) and, with it, the
//! INVALID_REGULAR_EXPRESSION error.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct ListTransactionsRequest {
        /// State names ("Ongoing", ...): only transactions in one of them; all when empty.
        pub state_filters: Vec<String>,
        /// Only these producer ids; all when empty.
        pub producer_id_filters: Vec<i64>,
        /// Only transactions started more than this many milliseconds ago; all when negative.
        pub duration_filter: i64 [1..] = -1,
        /// Only ids this pattern matches whole; all when null or empty.
        pub transactional_id_pattern: Option<String> [2..],
    }

    pub struct ListTransactionsResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode,
        /// The state filters of the request that name no state.
        pub unknown_state_filters: Vec<String>,
        pub transaction_states: Vec<ListedTransaction>,
    }

    pub struct ListedTransaction {
        pub transactional_id: String,
        pub producer_id: i64,
        pub transaction_state: String,
    }
}

impl Request for ListTransactionsRequest {
    const KEY: ApiKey = ApiKey::ListTransactions;
    const VERSIONS: (i16, i16) = (0, 2);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = ListTransactionsResponse;
}

/// `TransactionalIdPattern` as Kafka's coordinator reads it: `None` (every id) when absent or
/// empty, else a regular expression that must match the whole id (Kafka calls RE2/J's
/// `Matcher.matches`). Kafka compiles it with RE2/J and the `regex` crate takes the same RE2
/// syntax (no backreferences, no lookaround), with two differences at the edges: `\w`, `\d`,
/// `\s` and `\b` are Unicode-aware here and ASCII-only in RE2/J (which only matters for ids
/// outside ASCII), and a repeated repetition such as `a**`, which RE2/J refuses, is taken here
/// as `(a*)*`. The error is the pattern's, for INVALID_REGULAR_EXPRESSION.
pub fn transactional_id_matcher(pattern: Option<&str>) -> Result<Option<regex::Regex>, String> {
    let Some(pattern) = pattern.filter(|p| !p.is_empty()) else { return Ok(None) };
    // Compiled alone first: anchoring `a)|(b` as `\A(?:a)|(b)\z` would make a valid
    // expression of an invalid one.
    regex::Regex::new(pattern).map_err(|e| e.to_string())?;
    regex::Regex::new(&format!(r"\A(?:{pattern})\z")).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    fn request(version: i16) -> ListTransactionsRequest {
        let mut w = Writer::new();
        w.array_len(true, Some(1));
        w.string(true, "Ongoing");
        w.array_len(true, Some(2));
        w.i64(7);
        w.i64(8);
        if version >= 1 {
            w.i64(60_000);
        }
        if version >= 2 {
            w.nullable_string(true, Some("app-.*"));
        }
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = ListTransactionsRequest::decode(&mut r, Version::new(version, true)).unwrap();
        assert_eq!(r.remaining(), 0, "v{version}");
        req
    }

    #[test]
    fn decodes_v0_v1_v2() {
        for version in 0..=2 {
            let req = request(version);
            assert_eq!(req.state_filters, vec!["Ongoing".to_string()]);
            assert_eq!(req.producer_id_filters, vec![7, 8]);
            assert_eq!(req.duration_filter, if version >= 1 { 60_000 } else { -1 }, "v{version}");
            assert_eq!(req.transactional_id_pattern.as_deref(), if version >= 2 { Some("app-.*") } else { None });
        }
    }

    #[test]
    fn the_pattern_matches_whole_ids() {
        let m = transactional_id_matcher(Some("app-[0-9]+")).unwrap().unwrap();
        assert!(m.is_match("app-12"));
        assert!(!m.is_match("my-app-12"), "a match inside the id is not enough");
        assert!(!m.is_match("app-12x"));
        let either = transactional_id_matcher(Some("a|b")).unwrap().unwrap();
        assert!(either.is_match("b") && !either.is_match("ab"), "the alternation is anchored as a whole");
        assert!(transactional_id_matcher(None).unwrap().is_none());
        assert!(transactional_id_matcher(Some("")).unwrap().is_none(), "empty: every id");
        for invalid in ["a)|(b", "(", "[z-a]", r"(a)\1", "(?=a)", "a{2,1}"] {
            assert!(transactional_id_matcher(Some(invalid)).is_err(), "{invalid:?} is not valid RE2");
        }
        // Far past the compiled-size limit: an error, not a panic or a huge allocation.
        assert!(transactional_id_matcher(Some("(a{1000}){1000}")).is_err());
    }
}

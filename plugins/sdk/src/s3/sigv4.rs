//! AWS Signature Version 4 for S3 requests (path-style). Only headers and the query are
//! hashed here: the payload's SHA-256 comes from the host with the chunk (or, for the
//! small JSON files, from [`sha256_hex`]).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::cinder::hex;

type HmacSha256 = Hmac<Sha256>;

pub struct Credentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The `Authorization` header for a request. `path` is the encoded path, `query` the
/// decoded parameters, `headers` lower-case names with their values (every one is
/// signed; `host`, `x-amz-date` and `x-amz-content-sha256` must be among them),
/// `amz_date` `YYYYMMDDTHHMMSSZ`.
pub fn authorization(
    creds: &Credentials<'_>,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(String, String)],
    payload_sha256: &str,
    amz_date: &str,
) -> String {
    let mut q: Vec<(String, String)> =
        query.iter().map(|(k, v)| (crate::http::encode(k, false), crate::http::encode(v, false))).collect();
    q.sort();
    let canonical_query = q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut h: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())).collect();
    h.sort();
    let canonical_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = h.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let request = format!("{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload_sha256}");
    let date = &amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", creds.region);
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(request.as_bytes()));
    let mut key = hmac(format!("AWS4{}", creds.secret_key).as_bytes(), date);
    for part in [creds.region, "s3", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex(&hmac(&key, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}", creds.access_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (S3 SigV4 docs, "GET Object"): the same signature.
    #[test]
    fn the_aws_example_signs_the_same() {
        let creds = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
        };
        let empty = sha256_hex(b"");
        let headers = vec![
            ("host".to_owned(), "examplebucket.s3.amazonaws.com".to_owned()),
            ("range".to_owned(), "bytes=0-9".to_owned()),
            ("x-amz-content-sha256".to_owned(), empty.clone()),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let auth = authorization(&creds, "GET", "/test.txt", &[], &headers, &empty, "20130524T000000Z");
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}

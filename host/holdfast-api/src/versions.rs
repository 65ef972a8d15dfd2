//! The versions document (cinderclient and openstacksdk discover the API with it).

use hyper::StatusCode;

use crate::error::json_response;
use crate::microversion::{MAX_VERSION, MIN_VERSION};
use crate::{Call, HttpResponse};

pub fn document(call: &Call<'_>, root: bool) -> HttpResponse {
    let body = serde_json::json!({"versions": [{
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX_VERSION.to_string(),
        "min_version": MIN_VERSION.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{}/v3/", call.base_url)}
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}]
    }]});
    // Cinder answers `/` with 300 Multiple Choices and the same document.
    json_response(if root { StatusCode::MULTIPLE_CHOICES } else { StatusCode::OK }, &body)
}

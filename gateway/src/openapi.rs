//! The OpenAPI document the gateway serves: the contracts' document (pkg/api) with the error
//! responses of every operation filled in from the gateway's status table
//! ([`ApiCode::status`]), so the document can never say another status than the gateway
//! answers with.
//!
//! The contracts list, per operation, the error codes it can answer with (`x-error-codes`:
//! those of any request, of its access level and body, and those its method declares); here
//! each becomes a response under its status. Codes sharing a status share the response.
//! docs/api/openapi.json is the committed copy of this document.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::error::ApiCode;

/// The document, built once.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let document = build(api::OPENAPI_JSON).expect("the contracts' OpenAPI document is valid");
        serde_json::to_string_pretty(&sorted(document)).expect("a JSON value serializes") + "\n"
    });
    &DOCUMENT
}

/// Keys in alphabetical order at every level, whichever map serde_json was built with (a
/// dependency that turns on `preserve_order` would otherwise change the document).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn build(contracts_document: &str) -> Result<Value, String> {
    let mut document: Value =
        serde_json::from_str(contracts_document).map_err(|e| format!("not JSON: {e}"))?;
    let paths = document["paths"]
        .as_object_mut()
        .ok_or("the document has no paths")?;
    for (path, operations) in paths.iter_mut() {
        let operations = operations
            .as_object_mut()
            .ok_or_else(|| format!("{path} is not an object"))?;
        for (verb, operation) in operations.iter_mut() {
            let codes = operation["x-error-codes"]
                .as_array()
                .ok_or_else(|| format!("{verb} {path} has no x-error-codes"))?;
            let mut by_status: BTreeMap<u16, Vec<ApiCode>> = BTreeMap::new();
            for code in codes {
                let code = code
                    .as_str()
                    .and_then(ApiCode::parse)
                    .ok_or_else(|| format!("{verb} {path}: unknown error code {code}"))?;
                by_status
                    .entry(code.status().as_u16())
                    .or_default()
                    .push(code);
            }
            let responses = operation["responses"]
                .as_object_mut()
                .ok_or_else(|| format!("{verb} {path} has no responses"))?;
            for (status, codes) in by_status {
                let description = codes
                    .iter()
                    .map(|c| format!("`{}`: {}", c.as_str(), c.description()))
                    .collect::<Vec<_>>()
                    .join("; or ");
                responses.insert(
                    status.to_string(),
                    json!({
                        "description": description,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                    }),
                );
            }
        }
    }
    let schemas = document["components"]["schemas"]
        .as_object_mut()
        .ok_or("the document has no component schemas")?;
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "The body of every error answer.",
            "required": ["code", "message", "details"],
            "properties": {
                "code": { "type": "string", "enum": ApiCode::ALL.map(ApiCode::as_str) },
                "message": { "type": "string" },
                "details": {
                    "type": "array",
                    "description": "The bad fields of an invalid_argument answer, in the request's own field names (\"price.currency\", \"items[2].quantity\").",
                    "items": {
                        "type": "object",
                        "required": ["field", "problem"],
                        "properties": { "field": { "type": "string" }, "problem": { "type": "string" } }
                    }
                }
            }
        }),
    );
    Ok(document)
}

#[cfg(test)]
mod tests {
    use rpc::ErrorCode;

    use super::*;

    fn operation<'a>(document: &'a Value, verb: &str, path: &str) -> &'a Value {
        let operation = &document["paths"][path][verb];
        assert!(operation.is_object(), "{verb} {path}");
        operation
    }

    #[test]
    fn every_error_response_has_the_status_of_the_table() {
        let document: Value = serde_json::from_str(document()).unwrap();
        let mut seen = std::collections::HashSet::new();
        for route in api::ROUTES {
            let operation = operation(&document, &route.http_method.to_lowercase(), route.path);
            for code in operation["x-error-codes"].as_array().unwrap() {
                let code = ApiCode::parse(code.as_str().unwrap()).unwrap();
                let status = code.status().as_u16().to_string();
                let response = &operation["responses"][&status];
                assert!(
                    response["description"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("`{}`", code.as_str())),
                    "{} {}: {status} does not describe {}",
                    route.http_method,
                    route.path,
                    code.as_str()
                );
                seen.insert(status);
            }
            assert!(operation["responses"]["200"].is_object());
        }
        // The codes only the gateway answers with are documented too.
        for status in ["413", "415", "422", "429", "503", "504"] {
            assert!(seen.contains(status), "{status} is never documented");
        }
    }

    #[test]
    fn declared_errors_decide_404_and_409_not_the_verb() {
        let document: Value = serde_json::from_str(document()).unwrap();
        // A public GET of one product can be missing; listing cannot.
        let get = operation(&document, "get", "/api/v1/products/{id}");
        assert!(get["responses"]["404"].is_object());
        let list = operation(&document, "get", "/api/v1/products");
        assert!(list["responses"]["404"].is_null());
        // Creating a category can collide with an existing one; failed_precondition shares 409.
        let create = operation(&document, "post", "/api/v1/categories");
        assert!(create["responses"]["409"].is_object());
        let set_stock = operation(&document, "put", "/api/v1/products/{id}/stock");
        assert!(
            set_stock["responses"]["409"]["description"]
                .as_str()
                .unwrap()
                .contains("failed_precondition")
        );
        // Admin methods answer 403; bodies can be too large or not JSON.
        assert!(create["responses"]["403"].is_object());
        assert!(create["responses"]["413"].is_object());
        assert!(create["responses"]["415"].is_object());
        assert!(get["responses"]["413"].is_null());
    }

    #[test]
    fn mutating_routes_document_the_idempotency_answers() {
        let document: Value = serde_json::from_str(document()).unwrap();
        let create = operation(&document, "post", "/api/v1/addresses");
        let conflict = create["responses"]["409"]["description"].as_str().unwrap();
        assert!(conflict.contains("idempotency_key_in_flight"), "{conflict}");
        let reused = create["responses"]["422"]["description"].as_str().unwrap();
        assert!(reused.contains("idempotency_key_reused"), "{reused}");
        let delete = operation(&document, "delete", "/api/v1/addresses/{id}");
        assert!(delete["responses"]["422"].is_object());
        let list = operation(&document, "get", "/api/v1/products");
        assert!(list["responses"]["422"].is_null());
        assert!(list["responses"]["409"].is_null());
    }

    #[test]
    fn the_error_schema_lists_every_code_of_the_table() {
        let document: Value = serde_json::from_str(document()).unwrap();
        let codes = &document["components"]["schemas"]["Error"]["properties"]["code"]["enum"];
        for code in ErrorCode::ALL {
            assert!(
                codes.as_array().unwrap().contains(&json!(code.as_str())),
                "{}",
                code.as_str()
            );
        }
        assert!(
            codes
                .as_array()
                .unwrap()
                .contains(&json!("method_not_allowed"))
        );
    }

    #[test]
    fn an_unknown_code_in_the_contracts_is_refused() {
        let mut contracts: Value = serde_json::from_str(api::OPENAPI_JSON).unwrap();
        let route = &api::ROUTES[0];
        contracts["paths"][route.path][route.http_method.to_lowercase()]["x-error-codes"] =
            json!(["teapot"]);
        let error = build(&contracts.to_string()).unwrap_err();
        assert!(error.contains("teapot"), "{error}");
    }

    /// docs/api/openapi.json is the committed copy of the document, so reviewers see API
    /// changes in diffs. Regenerate with `cargo xtask api-docs`.
    #[test]
    fn committed_openapi_document_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == document(),
            "docs/api/openapi.json is out of date: run `cargo xtask api-docs`"
        );
    }
}

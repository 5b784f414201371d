//! JSON Schema of the contract messages, shared by the OpenAPI document and the AsyncAPI
//! catalogue: canonical proto3 JSON (proto field names, 64-bit integers as strings, enums by
//! name, well-known types in their JSON form).

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value as Json, json};

use crate::contracts::{Contracts, Rules, must_be_present};

pub fn schema_of(
    contracts: &Contracts,
    message: &MessageDescriptor,
    schemas: &mut BTreeMap<String, Json>,
) {
    let name = schema_name(message);
    if schemas.contains_key(&name) || well_known(message).is_some() {
        return;
    }
    schemas.insert(name.clone(), Json::Null);
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for field in message.fields() {
        // A field a cookie can fill may be left out of the body.
        let rules = contracts.rules.get(field.full_name());
        if must_be_present(rules, &field) && rules.is_none_or(|r| r.cookie.is_none()) {
            required.push(field.name().to_owned());
        }
        let mut schema = field_schema(contracts, &field);
        if let Some(doc) = contracts.field_comment(&field) {
            schema["description"] = json!(doc);
        }
        properties.insert(field.name().to_owned(), schema);
        if let Kind::Message(inner) = field.kind() {
            schema_of(contracts, &inner, schemas);
        }
    }
    // Unknown fields are refused on the wire (canonical proto3 JSON, strict), so the schema
    // says so too.
    let mut schema =
        json!({ "type": "object", "properties": properties, "additionalProperties": false });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    if let Some(doc) = contracts.comment_of(message.parent_file().name(), message.path()) {
        schema["description"] = json!(doc);
    }
    schemas.insert(name, schema);
}

fn schema_name(message: &MessageDescriptor) -> String {
    // emporium.product.v1.Product -> product.v1.Product
    message
        .full_name()
        .strip_prefix("emporium.")
        .unwrap_or(message.full_name())
        .to_owned()
}

pub fn schema_ref(message: &MessageDescriptor) -> Json {
    well_known(message).unwrap_or_else(
        || json!({ "$ref": format!("#/components/schemas/{}", schema_name(message)) }),
    )
}

pub fn well_known(message: &MessageDescriptor) -> Option<Json> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(json!({ "type": "string", "format": "date-time" })),
        "google.protobuf.Duration" => {
            Some(json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$" }))
        }
        "google.protobuf.Empty" => Some(json!({ "type": "object" })),
        _ => None,
    }
}

/// The schema of a field's value, with the rules its declaration states.
pub fn field_schema(contracts: &Contracts, field: &FieldDescriptor) -> Json {
    let rules = contracts.rules.get(field.full_name());
    let scalar = match field.kind() {
        Kind::String => string_schema(
            rules,
            rules.is_some_and(|r| r.required && r.cookie.is_none()),
        ),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer", "format": "int32", "minimum": 0 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({ "type": ["string", "integer"], "format": "int64", "pattern": "^-?[0-9]+$" })
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({ "type": ["string", "integer"], "format": "int64", "pattern": "^[0-9]+$" })
        }
        Kind::Float | Kind::Double => json!({ "type": "number" }),
        Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Kind::Enum(e) => {
            json!({ "type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>() })
        }
        Kind::Message(m) => schema_ref(&m),
    };
    let mut scalar = scalar;
    if let Some(rules) = rules
        && matches!(
            field.kind(),
            Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Sint32 | Kind::Sint64
        )
    {
        if let Some(minimum) = rules.minimum {
            scalar["minimum"] = json!(minimum);
        }
        if let Some(maximum) = rules.maximum {
            scalar["maximum"] = json!(maximum);
        }
    }
    if field.is_list() {
        let mut list = json!({ "type": "array", "items": scalar });
        if let Some(rules) = rules {
            if rules.required {
                list["minItems"] = json!(1);
            }
            if rules.max_items > 0 {
                list["maxItems"] = json!(rules.max_items);
            }
        }
        list
    } else {
        scalar
    }
}

/// A string field's schema. The empty string is the contract's "no value", so format, pattern
/// and choices bind only non-empty values unless the field is required; control characters
/// are refused as Unicode's Cc category (what the runtime checks) is.
fn string_schema(rules: Option<&Rules>, required: bool) -> Json {
    let mut schema = json!({ "type": "string" });
    let Some(rules) = rules else {
        return schema;
    };
    if rules.max_len > 0 {
        schema["maxLength"] = json!(rules.max_len);
    }
    let mut all = Vec::new();
    if required {
        schema["minLength"] = json!(1);
        all.push(json!({ "pattern": "\\S" }));
    }
    if rules.no_control {
        let pattern = if rules.multiline {
            "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
        } else {
            "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
        };
        all.push(json!({ "pattern": pattern }));
    }
    let mut shape = Vec::new();
    if rules.min_len > 0 {
        shape.push(json!({ "minLength": rules.min_len }));
    }
    if let Some(format) = rules.format {
        shape.push(json!({ "format": format }));
    }
    if let Some(pattern) = &rules.pattern {
        let mut schema = json!({ "pattern": format!("^(?:{pattern})$") });
        if !rules.pattern_problem.is_empty() {
            schema["description"] = json!(format!(
                "A value that does not match {}",
                rules.pattern_problem
            ));
        }
        shape.push(schema);
    }
    if !rules.one_of.is_empty() {
        shape.push(json!({ "enum": rules.one_of }));
    }
    if required {
        all.extend(shape);
    } else if !shape.is_empty() {
        let shape = if shape.len() == 1 {
            shape.remove(0)
        } else {
            json!({ "allOf": shape })
        };
        all.push(json!({ "anyOf": [{ "const": "" }, shape] }));
    }
    match all.len() {
        0 => {}
        1 => {
            for (key, value) in all.remove(0).as_object().expect("an object").clone() {
                schema[key] = value;
            }
        }
        _ => schema["allOf"] = json!(all),
    }
    schema
}

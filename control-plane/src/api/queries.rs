//! Saved fleet queries (CRUD through `documents`): named filters the fleet page applies and
//! jobs target (`{"target": {"query": id}}`). Reading needs `devices:read`, writing
//! `devices:write`.

use super::documents::ApiDocument;
use crate::error::{ApiError, FieldError, check_text};
use crate::store::{MAX_QUERY_FIELD, MAX_QUERY_NAME, SavedQueryInput};

impl ApiDocument for SavedQueryInput {
    const NAME: &'static str = "query";

    fn check(&self) -> Result<(), ApiError> {
        let mut errors: Vec<FieldError> = Vec::new();
        check_text(&mut errors, "name", &self.name, true, MAX_QUERY_NAME);
        let q = &self.query;
        for (field, value) in [
            ("query.text", &q.text),
            ("query.tag", &q.tag),
            ("query.group", &q.group),
            ("query.version", &q.version),
        ] {
            if let Some(v) = value {
                check_text(&mut errors, field, v, false, MAX_QUERY_FIELD);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

//! The contract code of every error a client sees.
//!
//! Resolver errors get theirs from [`AppError`](crate::error::AppError), and so do the
//! refusals of [`admission`](super::admission), limits included. What is left comes from
//! async-graphql itself before or while it resolves: a document that does not parse or
//! validate, an unknown operation name, an argument of the wrong type. Each of those is the
//! client's input, so each is `BAD_USER_INPUT`, told apart by where it came from (no code
//! yet) rather than by its wording.

use async_graphql::{ErrorExtensionValues, ServerError, Value};

use crate::error::ErrorCode;

/// Gives each of `errors` without an `extensions.code` the code `BAD_USER_INPUT`, with the
/// `fields` list that code promises (empty: the error names no input field of ours).
pub fn complete(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::BadUserInput.as_str());
            if extensions.get("fields").is_none() {
                extensions.set("fields", Value::List(Vec::new()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_without_a_code_are_the_clients_input_and_coded_ones_keep_theirs() {
        let mut coded = ServerError::new("no", None);
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", ErrorCode::Forbidden.as_str());
        coded.extensions = Some(extensions);
        let mut errors = vec![ServerError::new("Unknown field \"x\"", None), coded];
        complete(&mut errors);
        let code = |e: &ServerError| e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code(&errors[0]), Some(Value::from("BAD_USER_INPUT")));
        assert_eq!(
            errors[0].extensions.as_ref().and_then(|x| x.get("fields")),
            Some(&Value::List(Vec::new()))
        );
        assert_eq!(code(&errors[1]), Some(Value::from("FORBIDDEN")));
        assert!(
            errors[1]
                .extensions
                .as_ref()
                .and_then(|x| x.get("fields"))
                .is_none()
        );
    }
}

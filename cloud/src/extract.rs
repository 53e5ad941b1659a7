//! Request extractors whose rejections are this crate's [`Error`]: a path,
//! query or JSON body the framework cannot parse gets the same JSON error
//! body (`code`, `message`, `iv_err`) as every other refusal, not axum's
//! plain-text one.

use crate::error::{Error, ErrorKind};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// [`axum::extract::Path`] with a 400 [`Error`] as its rejection.
pub struct ApiPath<T>(pub T);

/// [`axum::extract::Query`] with a 400 [`Error`] as its rejection.
pub struct ApiQuery<T>(pub T);

/// [`axum::Json`] with an [`Error`] as its rejection (415 without a JSON
/// content type, else 400).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| Error::bad_request(format!("path: {}", e.body_text())))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| Error::bad_request(format!("query: {}", e.body_text())))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(|e: JsonRejection| {
                let kind = if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    ErrorKind::UnsupportedMedia
                } else {
                    ErrorKind::BadRequest
                };
                Error::new(kind, format!("body: {}", e.body_text()))
            })
    }
}

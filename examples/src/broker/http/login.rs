//! `POST /dashboard/login`: a dashboard user's name and password in, temporary credentials out
//! (what a Cognito identity pool and STS hand a signed-in web user on AWS): an access key id, a
//! secret and a session token that sign as `arn:aws:iam::{account}:user/{name}`, limited by that
//! ARN's IoT policies, valid for `dashboard.credential_ttl_secs`.
//!
//! Body `{"username": …, "password": …}`; answer
//! `{"Credentials": {"AccessKeyId", "SecretKey", "SessionToken", "Expiration"}, "IdentityId",
//! "Region"}` (Cognito's `GetCredentialsForIdentity` shape, `Expiration` in epoch seconds). A
//! wrong name or password is a 401 `UnauthorizedException` saying only that; the password check
//! (argon2) runs off the async threads, at most two at a time.

use hyper::{Method, Response};
use serde_json::{Value, json};

use super::{ApiError, ErrorType, HttpContext};
use crate::engine::now_ms;
use crate::net::http::{Body, ok_json};
use crate::store::access_keys::{check_password, user_arn};

/// The largest login body read.
pub(super) const MAX_LOGIN_BODY: usize = 4096;

pub(super) async fn handle(
    context: &HttpContext,
    method: &Method,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed("Login takes POST"));
    }
    let request: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::invalid("Expected a JSON object"))?;
    let (Some(user), Some(password)) = (
        request.get("username").and_then(Value::as_str),
        request.get("password").and_then(Value::as_str),
    ) else {
        return Err(ApiError::invalid("Expected username and password"));
    };
    let keys = context.sigv4.store().0.clone();
    let stored = keys
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .login_profile(user);
    // An unknown user costs the same check as a wrong password: no timing tells them apart.
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| context.dummy_password_hash.clone());
    let permit = context
        .login_permits
        .acquire()
        .await
        .map_err(|_| ApiError::EngineStopped)?;
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || check_password(&hash, &password))
        .await
        .unwrap_or(false);
    drop(permit);
    if !(known && matches) {
        tracing::info!(user, "dashboard login refused");
        return Err(ApiError::new(
            ErrorType::Unauthorized,
            "Incorrect username or password",
        ));
    }
    let now = now_ms() / 1000;
    let issued = keys
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .issue_temporary(user, now, context.credential_ttl_secs)
        .map_err(|e| ApiError::new(ErrorType::InternalFailure, e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorType::Throttling,
                "Too many sessions are open; try again later",
            )
        })?;
    tracing::info!(
        user,
        access_key_id = issued.access_key_id,
        "dashboard login"
    );
    Ok(ok_json(
        json!({
            "Credentials": {
                "AccessKeyId": issued.access_key_id,
                "SecretKey": issued.secret_access_key,
                "SessionToken": issued.session_token,
                "Expiration": issued.expires_at,
            },
            "IdentityId": user_arn(&context.account, user),
            "Region": context.region,
        })
        .to_string(),
    ))
}

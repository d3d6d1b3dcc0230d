//! A middleware that only the faces using cookies pass through.
//!
//! The JSON API ignores cookies and sets none (reference §5), so the cookie
//! session (CSRF tokens and flash messages) has nothing to read or write for
//! it; `BrowserOnly` sends an API request around the middleware it wraps.
//! For the browser and the site's script everything is as before.

use std::rc::Rc;

use actix_web::{
    Error,
    dev::{Service, ServiceRequest, ServiceResponse, Transform},
};
use futures_util::future::{Either, LocalBoxFuture};

use super::face::Face;

/// Wraps `T` (the cookie session) so that API requests skip it.
pub struct BrowserOnly<T>(pub T);

/// The inner service, shared by the two ways through.
pub struct Shared<S>(Rc<S>);

impl<S, B> Service<ServiceRequest> for Shared<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = S::Future;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        self.0.call(req)
    }
}

impl<S, B, T> Transform<S, ServiceRequest> for BrowserOnly<T>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
    T: Transform<Shared<S>, ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    T::Future: 'static,
    T::Transform: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = BrowserOnlyService<S, T::Transform>;
    type InitError = T::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let inner = Rc::new(service);
        let wrapped = self.0.new_transform(Shared(Rc::clone(&inner)));
        Box::pin(async move {
            Ok(BrowserOnlyService {
                inner,
                wrapped: wrapped.await?,
            })
        })
    }
}

pub struct BrowserOnlyService<S, W> {
    inner: Rc<S>,
    wrapped: W,
}

impl<S, B, W> Service<ServiceRequest> for BrowserOnlyService<S, W>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    W: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Either<S::Future, W::Future>;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.wrapped.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if Face::of_service(&req).uses_cookies() {
            Either::Right(self.wrapped.call(req))
        } else {
            Either::Left(self.inner.call(req))
        }
    }
}

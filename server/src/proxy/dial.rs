//! How the proxy reaches a tunnel: one held by this process, else through a peer proxy of the
//! cluster that holds it (`tunnel::peer`). The router asks a [`Dialer`]; which one answers is
//! the dialer's business.

use shared::client::{BoxFuture, BoxStream};
use shared::error::Result;

use crate::tunnel::peer::Peering;
use crate::tunnel::{TunnelKey, TunnelRequest};

/// Opens a stream for `req` through a tunnel for `key`.
pub trait Dialer: Send + Sync + 'static {
    /// A stream to what `req` names, or the far end's refusal.
    fn dial<'a>(&'a self, key: &'a TunnelKey, req: &'a TunnelRequest) -> BoxFuture<'a, Result<BoxStream>>;
}

impl Dialer for Peering {
    fn dial<'a>(&'a self, key: &'a TunnelKey, req: &'a TunnelRequest) -> BoxFuture<'a, Result<BoxStream>> {
        Box::pin(Peering::dial(self, key, req))
    }
}

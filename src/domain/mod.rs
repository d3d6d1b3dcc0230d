//! Values that cross the network edge, parsed once into types that cannot hold
//! an invalid state, and the ids that name things. Nothing here knows about
//! HTTP, SQL or secrets, and nothing here imports the rest of the crate.

mod ids;
mod net;
mod password;
mod role;
mod username;

pub use ids::{SessionId, UserId};
pub use net::{BadIpNet, IpNet, canonical as canonical_ip, client_key};
pub use password::{
    MAX_BYTES as PASSWORD_MAX_BYTES, MIN_CHARS as PASSWORD_MIN_CHARS, Password, PasswordError,
};
pub use role::{Role, UnknownRole};
pub use username::{
    MAX_LEN as USERNAME_MAX_LEN, MIN_LEN as USERNAME_MIN_LEN, Username, UsernameError, echo,
};

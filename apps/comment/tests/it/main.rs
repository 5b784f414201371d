//! Integration tests of the comment service: each test starts its own nats-server and
//! PostgreSQL databases, runs the real comment, product and shop services on them and calls
//! them over NATS the way the gateway does. `store` is the suite of the document stores: each
//! case runs against PostgreSQL and against MongoDB.

mod helpers;
mod moderation;
mod paging;
mod reviews;
mod seller;
mod store;
mod summary;
mod verified;

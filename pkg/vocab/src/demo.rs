//! The demo marketplace `make up` seeds (`--seed-demo-*` flags): one seller, their shop and
//! its catalog. The ids are fixed so that the auth, shop and product seeds agree without
//! talking to each other; nothing outside the seeds may treat these ids specially.

/// The demo seller's account (auth) and the owner of the demo shop (shop).
pub const DEMO_SELLER_ID: &str = "01900000-0000-7000-8000-00000000e001";
/// The demo seller's sign-in; the password is the seeding service's flag.
pub const DEMO_SELLER_EMAIL: &str = "seller@demo.emporium.test";
/// The demo shop (shop), which sells the demo products (product).
pub const DEMO_SHOP_ID: &str = "01900000-0000-7000-8000-00000000d001";
/// The demo shop's slug.
pub const DEMO_SHOP_SLUG: &str = "emporium-demo";
/// The demo shop's currency: the demo products are priced in it.
pub const DEMO_SHOP_CURRENCY: &str = "USD";

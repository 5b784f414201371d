//! The cart's contract as the gateway sees it.

#[test]
fn the_gateway_routes_every_public_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::cart::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("DELETE", "/api/v1/cart"),
            ("DELETE", "/api/v1/cart/items/{product_id}"),
            ("DELETE", "/api/v1/cart/voucher"),
            ("GET", "/api/v1/cart"),
            ("POST", "/api/v1/cart/voucher"),
            ("POST", "/api/v1/carts"),
            ("PUT", "/api/v1/cart/items/{product_id}"),
        ]
    );
}

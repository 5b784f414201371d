//! What the contract promises the gateway.

#[test]
fn the_gateway_routes_every_public_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::shop::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("GET", "/api/v1/me/shops"),
            ("GET", "/api/v1/shops"),
            ("GET", "/api/v1/shops/{id}"),
            ("PATCH", "/api/v1/shops/{id}"),
            ("POST", "/api/v1/admin/shops/{id}/approve"),
            ("POST", "/api/v1/admin/shops/{id}/suspend"),
            ("POST", "/api/v1/shops"),
            ("POST", "/api/v1/shops/{id}/close"),
        ]
    );
}

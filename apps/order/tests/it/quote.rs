//! The checkout quote: what the checkout page shows before the customer pays. It prices the
//! cart exactly as the checkout then does, takes nothing and writes nothing, and says why a
//! cart cannot be checked out. Sub-orders carry their shop's name wherever they are read.

use api::order::{CheckoutQuote, ListOrdersRequest, QuoteCheckoutRequest, ShopQuote, SubOrder};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{
    Seller, TestApp, VISA_OK, bad_fields, expect_error, minor, not_found_shape, sub_order_of,
};

fn quote_of<'a>(quote: &'a CheckoutQuote, seller: &Seller) -> &'a ShopQuote {
    quote
        .shops
        .iter()
        .find(|s| s.shop_id == seller.shop_id)
        .expect("the quote has a part of the shop")
}

/// The figures of a quote's shop part and of a sub-order, to compare them as one.
fn figures_of_quote(part: &ShopQuote) -> [i64; 5] {
    [
        minor(&part.subtotal),
        minor(&part.discount),
        minor(&part.shipping),
        minor(&part.tax),
        minor(&part.total),
    ]
}

fn figures_of_sub_order(sub: &SubOrder) -> [i64; 5] {
    [
        minor(&sub.subtotal),
        minor(&sub.discount),
        minor(&sub.shipping),
        minor(&sub.tax),
        minor(&sub.total),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quote_is_what_the_order_then_charges_and_it_takes_nothing() {
    let app = TestApp::spawn().await;
    let (north, south) = (app.seller().await, app.seller().await);
    let lamp = app.product(&north, "Lamp", 2500, 5).await;
    let rug = app.product(&south, "Rug", 10_000, 3).await;
    app.voucher("WELCOME10", 1000, 1).await;
    // A German address: 10% tax on what remains after the discount, plus shipping.
    let customer = app.customer_with(VISA_OK, "DE").await;
    app.add_to_cart(&customer, &lamp, 2).await;
    app.add_to_cart(&customer, &rug, 1).await;

    let quote = app
        .quote(
            &customer,
            QuoteCheckoutRequest {
                shipping_method: "express".into(),
                voucher_code: "WELCOME10".into(),
                ..Default::default()
            },
        )
        .await
        .expect("quoting the checkout");

    assert_eq!(quote.problem, None);
    assert_eq!(quote.currency, "USD");
    assert_eq!(quote.voucher_code, "WELCOME10");
    assert_eq!(quote.shipping_method, "express");
    assert_eq!(quote.shops.len(), 2);
    let (n, s) = (quote_of(&quote, &north), quote_of(&quote, &south));
    assert_eq!(n.shop_name, north.shop_name);
    assert_eq!(s.shop_name, south.shop_name);
    assert_eq!(n.lines.len(), 1);
    assert_eq!(
        (
            n.lines[0].product_id.as_str(),
            n.lines[0].quantity,
            minor(&n.lines[0].line_total)
        ),
        (lamp.id.as_str(), 2, 5000)
    );
    // 1000 off shared 333/667; express 1500 per shop; 10% of (subtotal - discount + shipping).
    assert_eq!(figures_of_quote(n), [5000, 333, 1500, 617, 6784]);
    assert_eq!(figures_of_quote(s), [10_000, 667, 1500, 1083, 11_916]);
    assert_eq!(
        [
            minor(&quote.subtotal),
            minor(&quote.discount),
            minor(&quote.shipping),
            minor(&quote.tax),
            minor(&quote.total)
        ],
        [15_000, 1000, 3000, 1700, 18_700]
    );

    // Nothing was taken or written: the stock is all there, the voucher unused, no order.
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved, lamps.available), (5, 0, 5));
    assert_eq!(app.voucher_state("WELCOME10").await.used_count, 0);
    let listed = app
        .list_orders(&customer.ctx, ListOrdersRequest::default())
        .await
        .unwrap();
    assert!(listed.orders.is_empty(), "{:?}", listed.orders);
    assert_eq!(app.cart(&customer).await.lines.len(), 2);

    // Checking out with the quoted total succeeds, and the order has the quote's figures.
    let mut request = app.checkout_request(&customer, &Uuid::now_v7().to_string());
    request.shipping_method = "express".into();
    request.voucher_code = "WELCOME10".into();
    request.expected_total = quote.total.clone();
    let answer = app.checkout_with(&customer, &request).await.unwrap();
    let order = app.settled(&customer, &answer.order.unwrap().id).await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    assert_eq!(order.total, quote.total);
    assert_eq!(order.tax, quote.tax);
    assert_eq!(order.discount, quote.discount);
    assert_eq!(order.shipping, quote.shipping);
    for (seller, part) in [(&north, n), (&south, s)] {
        let sub = sub_order_of(&order, seller);
        assert_eq!(figures_of_sub_order(sub), figures_of_quote(part));
        assert_eq!(sub.shop_name, seller.shop_name);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_that_moved_after_the_quote_fails_the_checkout_and_charges_nothing() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let customer = app.customer().await;
    app.add_to_cart(&customer, &lamp, 1).await;
    let quote = app
        .quote(&customer, QuoteCheckoutRequest::default())
        .await
        .unwrap();
    assert_eq!(minor(&quote.total), 2500 + 500);

    app.reprice(&seller, &lamp, 2700).await;
    let mut request = app.checkout_request(&customer, &Uuid::now_v7().to_string());
    request.expected_total = quote.total.clone();
    let answer = app.checkout_with(&customer, &request).await.unwrap();
    let order = app.settled(&customer, &answer.order.unwrap().id).await;

    assert_eq!(order.status, "failed");
    let failure = order.failure.as_ref().unwrap();
    assert_eq!(failure.code, "price_changed");
    assert_eq!(failure.price_changes.len(), 1);
    assert_eq!(minor(&failure.price_changes[0].unit_price), 2700);
    assert!(app.payments_of(&order.id).await.is_empty());
    let lamps = app.availability(&lamp).await;
    assert_eq!((lamps.stock, lamps.reserved), (5, 0));
    // A new quote shows the new total, and checking out with it succeeds.
    let quote = app
        .quote(&customer, QuoteCheckoutRequest::default())
        .await
        .unwrap();
    assert_eq!(minor(&quote.total), 2700 + 500);
    let mut request = app.checkout_request(&customer, &Uuid::now_v7().to_string());
    request.expected_total = quote.total.clone();
    let answer = app.checkout_with(&customer, &request).await.unwrap();
    let order = app.settled(&customer, &answer.order.unwrap().id).await;
    assert_eq!(order.status, "paid", "{:?}", order.failure);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_that_cannot_be_checked_out_is_quoted_with_the_reason() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 2).await;
    let (first, second) = (app.customer().await, app.customer().await);

    // An empty cart.
    let quote = app
        .quote(&second, QuoteCheckoutRequest::default())
        .await
        .unwrap();
    assert_eq!(quote.problem.as_ref().unwrap().code, "empty_cart");
    assert!(quote.shops.is_empty());
    assert_eq!(quote.total, None);

    // A voucher that does not exist.
    app.add_to_cart(&second, &lamp, 2).await;
    let quote = app
        .quote(
            &second,
            QuoteCheckoutRequest {
                voucher_code: "NOSUCHCODE".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(quote.problem.as_ref().unwrap().code, "voucher_unavailable");

    // The lamps sold to someone else: the lines out of stock are named.
    app.add_to_cart(&first, &lamp, 2).await;
    assert_eq!(app.checkout(&first).await.status, "paid");
    let quote = app
        .quote(&second, QuoteCheckoutRequest::default())
        .await
        .unwrap();
    let problem = quote.problem.as_ref().expect("a problem");
    assert_eq!(problem.code, "out_of_stock");
    assert_eq!(problem.product_ids, std::slice::from_ref(&lamp.id));
    // The checkout refuses the same way.
    let order = app.checkout(&second).await;
    assert_eq!(order.failure.as_ref().unwrap().code, "out_of_stock");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_names_bad_fields_and_another_users_address_is_not_found() {
    let app = TestApp::spawn().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 5).await;
    let (customer, stranger) = (app.customer().await, app.customer().await);
    app.add_to_cart(&customer, &lamp, 1).await;

    let error = app
        .quote(
            &customer,
            QuoteCheckoutRequest {
                shipping_address_id: "not-a-uuid".into(),
                shipping_method: "Next Day!".into(),
                voucher_code: "X".repeat(33),
            },
        )
        .await
        .unwrap_err();
    let mut fields = bad_fields(&error);
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["shipping_address_id", "shipping_method", "voucher_code"]
    );
    let error = app
        .quote(
            &customer,
            QuoteCheckoutRequest {
                shipping_method: "drone".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["shipping_method"]);

    // Someone else's address answers exactly like one that does not exist.
    let theirs = expect_error(
        app.quote(
            &customer,
            QuoteCheckoutRequest {
                shipping_address_id: stranger.address_id.clone(),
                ..Default::default()
            },
        )
        .await,
        ErrorCode::NotFound,
    );
    let missing_id = Uuid::now_v7().to_string();
    let missing = expect_error(
        app.quote(
            &customer,
            QuoteCheckoutRequest {
                shipping_address_id: missing_id.clone(),
                ..Default::default()
            },
        )
        .await,
        ErrorCode::NotFound,
    );
    assert_eq!(
        not_found_shape(&theirs, &stranger.address_id),
        not_found_shape(&missing, &missing_id)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_orders_carry_their_shops_name_for_customer_and_seller() {
    let app = TestApp::spawn().await;
    let (north, south) = (app.seller().await, app.seller().await);
    let lamp = app.product(&north, "Lamp", 2500, 5).await;
    let rug = app.product(&south, "Rug", 10_000, 3).await;
    let customer = app.customer().await;
    let order = app.paid_order(&customer, &[&lamp, &rug], 1).await;

    let read = app.get_order(&customer.ctx, &order.id).await.unwrap();
    let listed = app
        .list_orders(&customer.ctx, ListOrdersRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.orders.len(), 1);
    for seller in [&north, &south] {
        assert_eq!(sub_order_of(&read, seller).shop_name, seller.shop_name);
        assert_eq!(
            sub_order_of(&listed.orders[0], seller).shop_name,
            seller.shop_name
        );
        let theirs = app
            .shop_sub_orders(&seller.ctx, &seller.shop_id, "")
            .await
            .unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].shop_name, seller.shop_name);
        let one = app.get_sub_order(&seller.ctx, &theirs[0].id).await.unwrap();
        assert_eq!(one.shop_name, seller.shop_name);
    }
    app.stop().await;
}

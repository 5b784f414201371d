//! What the comment service asks other services, only through their contracts: whether a
//! product exists and which shop sells it (`product.lookup_products`), and who owns that
//! shop (`shop.get_shop_access`). Both are declared in the contract's `calls`.

use api::product::{LookupProductsRequest, Product, ProductClient};
use api::shop::{GetShopAccessRequest, ShopClient};
use rpc::{Context, ErrorCode, Principal, roles};
use uuid::Uuid;
use vocab::ownership::status;

/// The product and shop services, on the service's NATS connection.
#[derive(Clone)]
pub struct Catalog {
    products: ProductClient,
    shops: ShopClient,
}

/// A callee's failure as this service's: its cause in the logs, "try again" for the caller.
fn unavailable(method: &str, error: rpc::Error) -> rpc::Error {
    tracing::warn!(%method, code = ?error.code(), message = error.message(), "a call failed");
    rpc::Error::unavailable(format!("{method} did not answer; try again"))
}

impl Catalog {
    pub fn new(client: rpc::Client) -> Self {
        Self {
            products: ProductClient::new(client.clone()),
            shops: ShopClient::new(client),
        }
    }

    /// The product `product_id` as the catalog has it now, or `not_found`.
    pub async fn product(&self, ctx: &Context, product_id: Uuid) -> Result<Product, rpc::Error> {
        let request = LookupProductsRequest {
            product_ids: vec![product_id.to_string()],
        };
        let found = self
            .products
            .lookup_products(ctx, &request)
            .await
            .map_err(|e| unavailable("product.lookup_products", e))?;
        found
            .offers
            .into_iter()
            .filter_map(|offer| offer.product)
            .find(|product| product.id == product_id.to_string())
            .ok_or_else(|| rpc::Error::not_found(format!("product {product_id} not found")))
    }

    /// The shop that sells `product_id`, if `principal` is its owner and a seller and it
    /// trades; otherwise why not. Admins are not sellers: a reply speaks for the shop.
    pub async fn shop_of_sold_by(
        &self,
        ctx: &Context,
        product_id: Uuid,
        principal: &Principal,
    ) -> Result<Uuid, rpc::Error> {
        let product = self.product(ctx, product_id).await?;
        let refused = || rpc::Error::permission_denied("only the seller of this product may reply");
        if !principal.has_role(roles::SELLER) {
            return Err(refused());
        }
        let request = GetShopAccessRequest {
            shop_id: product.shop_id.clone(),
        };
        let access = match self.shops.get_shop_access(ctx, &request).await {
            Ok(access) => access,
            Err(e) if e.code() == ErrorCode::NotFound => return Err(refused()),
            Err(e) => return Err(unavailable("shop.get_shop_access", e)),
        };
        if access.owner_id != principal.user_id {
            return Err(refused());
        }
        if access.status != status::ACTIVE {
            return Err(rpc::Error::failed_precondition(format!(
                "shop {} is {}: only an active shop replies",
                access.shop_id, access.status
            )));
        }
        Uuid::try_parse(&access.shop_id).map_err(|_| {
            unavailable(
                "shop.get_shop_access",
                rpc::Error::internal(anyhow::anyhow!("shop id is not a UUID")),
            )
        })
    }
}

//! The shop service, as the catalog needs it: who owns a shop, whether it trades, and what
//! it prices in. Asked on every seller write (writes are rare), with the request's context so
//! its deadline and trace go along; never cached, so a suspension stops a seller at once.

use api::shop::{GetShopAccessRequest, ShopAccess, ShopClient};
use rpc::{Context, ErrorCode};

use crate::domain::ShopId;

pub struct Shops {
    client: ShopClient,
}

impl Shops {
    pub fn new(nats: async_nats::Client) -> Self {
        Self {
            client: ShopClient::new(rpc::Client::new(nats)),
        }
    }

    /// What the shop service says about `shop_id`; `missing()` when it has no such shop.
    /// A shop service that cannot answer is `unavailable` (or `deadline_exceeded` when the
    /// request's time ran out): the write is refused rather than done unchecked.
    #[tracing::instrument(skip_all, fields(shop_id = %shop_id))]
    pub async fn access(
        &self,
        ctx: &Context,
        shop_id: ShopId,
        missing: impl FnOnce() -> rpc::Error,
    ) -> Result<ShopAccess, rpc::Error> {
        let request = GetShopAccessRequest {
            shop_id: shop_id.to_string(),
        };
        self.client
            .get_shop_access(ctx, &request)
            .await
            .map_err(|error| match error.code() {
                ErrorCode::NotFound => missing(),
                ErrorCode::DeadlineExceeded => rpc::Error::deadline_exceeded(
                    "the shop service did not answer within the deadline",
                ),
                _ => {
                    tracing::warn!(error = %error, "asking the shop service");
                    rpc::Error::unavailable(
                        "the shop service cannot say who owns this shop right now; try again",
                    )
                }
            })
    }
}

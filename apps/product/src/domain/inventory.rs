//! Inventory: stock levels, reservation requests and how a reservation may end.

use std::fmt;

use api::product::{
    CheckAvailabilityRequest, LookupProductsRequest, ReserveStockRequest, SetStockRequest,
};

use vocab::{Fields, Problem};

use super::{ProductId, ReservationId, Stock, UnknownValue};

/// Stock on hand and the part of it held by reservations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockLevel {
    pub stock: i64,
    pub reserved: i64,
}

impl StockLevel {
    /// What can still be reserved or sold.
    pub fn available(&self) -> i64 {
        (self.stock - self.reserved).max(0)
    }

    pub fn in_stock(&self) -> bool {
        self.available() > 0
    }

    pub fn can_supply(&self, quantity: Quantity) -> bool {
        self.available() >= quantity.get()
    }
}

/// A new stock level for one product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockChange {
    pub product_id: ProductId,
    pub stock: Stock,
}

impl StockChange {
    pub fn parse(request: &SetStockRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let product_id = fields.parse("id", ProductId::parse(&request.id));
        let stock = fields.parse("stock", Stock::parse(request.stock));
        fields.finish(|| {
            Some(StockChange {
                product_id: product_id?,
                stock: stock?,
            })
        })
    }
}

/// Units of one product in a reservation: 1 to 10000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 10_000;

    pub fn parse(value: i64) -> Result<Self, Problem> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Quantity(value))
        } else {
            Err(format!("must be between 1 and {}", Self::MAX).into())
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The products and quantities of a reservation: 1 to 100 distinct products, sorted by product
/// id. The order matters: stock rows are always locked in it, so two reservations can never
/// wait on each other (no deadlocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationItems(Vec<(ProductId, Quantity)>);

impl ReservationItems {
    pub const MAX_ITEMS: usize = 100;

    fn parse(fields: &mut Fields, items: &[api::product::ReservationItem]) -> Option<Self> {
        if items.is_empty() {
            fields.add("items", "must not be empty");
            return None;
        }
        if items.len() > Self::MAX_ITEMS {
            fields.add(
                "items",
                format!("must have at most {} items", Self::MAX_ITEMS),
            );
            return None;
        }
        let mut parsed = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let product_id = fields.parse(
                &format!("items[{index}].product_id"),
                ProductId::parse(&item.product_id),
            );
            let quantity = fields.parse(
                &format!("items[{index}].quantity"),
                Quantity::parse(item.quantity),
            );
            if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
                parsed.push((product_id, quantity));
            }
        }
        if parsed.len() != items.len() {
            return None;
        }
        parsed.sort_unstable();
        if parsed.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            fields.add("items", "must not name a product twice");
            return None;
        }
        Some(ReservationItems(parsed))
    }

    pub fn iter(&self) -> impl Iterator<Item = (ProductId, Quantity)> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The items of a `CheckAvailability` request.
pub fn parse_availability_check(
    request: &CheckAvailabilityRequest,
) -> Result<ReservationItems, rpc::Error> {
    let mut fields = Fields::default();
    let items = ReservationItems::parse(&mut fields, &request.items);
    fields.finish(|| items)
}

/// The products a `LookupProducts` request names: 1 to 100 ids, each once, sorted. A repeated
/// id is looked up once (the answer names each product once anyway).
pub fn parse_product_lookup(request: &LookupProductsRequest) -> Result<Vec<ProductId>, rpc::Error> {
    const MAX_IDS: usize = 100;
    let mut fields = Fields::default();
    if request.product_ids.is_empty() {
        fields.add("product_ids", "must not be empty");
    } else if request.product_ids.len() > MAX_IDS {
        fields.add("product_ids", format!("must have at most {MAX_IDS} items"));
    }
    let ids: Vec<Option<ProductId>> = request
        .product_ids
        .iter()
        .take(MAX_IDS)
        .enumerate()
        .map(|(index, id)| fields.parse(&format!("product_ids[{index}]"), ProductId::parse(id)))
        .collect();
    fields.finish(|| {
        let mut ids: Vec<ProductId> = ids.into_iter().collect::<Option<_>>()?;
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    })
}

/// How long a reservation holds stock: 1 to 86400 seconds, 900 when the request says 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldDuration(i32);

impl HoldDuration {
    pub const DEFAULT_SECONDS: i32 = 900;
    pub const MAX_SECONDS: i32 = 86_400;

    pub fn parse(seconds: i32) -> Result<Self, Problem> {
        match seconds {
            0 => Ok(HoldDuration(Self::DEFAULT_SECONDS)),
            1..=Self::MAX_SECONDS => Ok(HoldDuration(seconds)),
            _ => Err(format!("must be between 1 and {}", Self::MAX_SECONDS).into()),
        }
    }

    pub fn seconds(self) -> i32 {
        self.0
    }
}

/// A valid `ReserveStock` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReservation {
    pub id: ReservationId,
    pub items: ReservationItems,
    pub hold: HoldDuration,
}

impl NewReservation {
    pub fn parse(request: &ReserveStockRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let id = fields.parse(
            "reservation_id",
            ReservationId::parse(&request.reservation_id),
        );
        let items = ReservationItems::parse(&mut fields, &request.items);
        let hold = fields.parse("ttl_seconds", HoldDuration::parse(request.ttl_seconds));
        fields.finish(|| {
            Some(NewReservation {
                id: id?,
                items: items?,
                hold: hold?,
            })
        })
    }
}

/// Where a reservation is in its life: held, then exactly one of released, committed or
/// expired; a committed one may later be restocked (its order was cancelled before it shipped),
/// and that is its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    Held,
    Released,
    Committed,
    Expired,
    Restocked,
}

/// What a request to end a reservation does, given the reservation's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Move to this status and adjust the stock.
    Apply(ReservationStatus),
    /// It is already in the requested end state (or an equivalent one): change nothing.
    AlreadyDone,
    /// The reservation ended in a way that rules the request out.
    Refused,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Released => "released",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Expired => "expired",
            ReservationStatus::Restocked => "restocked",
        }
    }

    /// Releasing gives held stock back; a released or expired reservation has nothing left to
    /// give, and a committed one has been sold (and a restocked one sold and then put back).
    pub fn release(self) -> Transition {
        match self {
            ReservationStatus::Held => Transition::Apply(ReservationStatus::Released),
            ReservationStatus::Released | ReservationStatus::Expired => Transition::AlreadyDone,
            ReservationStatus::Committed | ReservationStatus::Restocked => Transition::Refused,
        }
    }

    /// Committing turns held stock into sold stock; stock that was given back cannot be sold,
    /// and a restocked reservation's sale was undone for good.
    pub fn commit(self) -> Transition {
        match self {
            ReservationStatus::Held => Transition::Apply(ReservationStatus::Committed),
            ReservationStatus::Committed => Transition::AlreadyDone,
            ReservationStatus::Released
            | ReservationStatus::Expired
            | ReservationStatus::Restocked => Transition::Refused,
        }
    }

    /// Restocking puts what a committed reservation sold back on hand, once; a reservation
    /// that never sold anything (held, released, expired) has nothing to put back.
    pub fn restock(self) -> Transition {
        match self {
            ReservationStatus::Committed => Transition::Apply(ReservationStatus::Restocked),
            ReservationStatus::Restocked => Transition::AlreadyDone,
            ReservationStatus::Held | ReservationStatus::Released | ReservationStatus::Expired => {
                Transition::Refused
            }
        }
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for ReservationStatus {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "held" => Ok(ReservationStatus::Held),
            "released" => Ok(ReservationStatus::Released),
            "committed" => Ok(ReservationStatus::Committed),
            "expired" => Ok(ReservationStatus::Expired),
            "restocked" => Ok(ReservationStatus::Restocked),
            _ => Err(UnknownValue(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use api::product::ReservationItem;
    use uuid::Uuid;

    use super::*;
    use testkit::bad_fields;

    fn item(product_id: &str, quantity: i64) -> ReservationItem {
        ReservationItem {
            product_id: product_id.into(),
            quantity,
        }
    }

    #[test]
    fn product_lookups_are_distinct_sorted_and_bounded() {
        let (a, b) = (ProductId::generate(), ProductId::generate());
        let lookup = |ids: Vec<String>| LookupProductsRequest { product_ids: ids };
        let ids = parse_product_lookup(&lookup(vec![b.to_string(), a.to_string(), b.to_string()]))
            .unwrap();
        assert_eq!(ids, [a, b]);
        assert_eq!(
            bad_fields(&parse_product_lookup(&lookup(vec![])).unwrap_err()),
            ["product_ids"]
        );
        assert_eq!(
            bad_fields(
                &parse_product_lookup(&lookup(vec![a.to_string(), "x".into()])).unwrap_err()
            ),
            ["product_ids[1]"]
        );
        let too_many = (0..101)
            .map(|_| ProductId::generate().to_string())
            .collect();
        assert_eq!(
            bad_fields(&parse_product_lookup(&lookup(too_many)).unwrap_err()),
            ["product_ids"]
        );
    }

    #[test]
    fn reservation_items_are_sorted_distinct_and_bounded() {
        let (a, b) = (ProductId::generate(), ProductId::generate());
        let request = ReserveStockRequest {
            reservation_id: Uuid::now_v7().to_string(),
            items: vec![item(&b.to_string(), 2), item(&a.to_string(), 1)],
            ttl_seconds: 0,
        };
        let reservation = NewReservation::parse(&request).unwrap();
        let ids: Vec<_> = reservation.items.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [a, b]);
        assert_eq!(reservation.hold.seconds(), 900);

        let duplicate = ReserveStockRequest {
            items: vec![item(&a.to_string(), 1), item(&a.to_string(), 2)],
            ..request.clone()
        };
        assert_eq!(
            bad_fields(&NewReservation::parse(&duplicate).unwrap_err()),
            ["items"]
        );

        let bad = ReserveStockRequest {
            reservation_id: "r1".into(),
            items: vec![item("p", 0), item(&b.to_string(), 10_001)],
            ttl_seconds: 86_401,
        };
        assert_eq!(
            bad_fields(&NewReservation::parse(&bad).unwrap_err()),
            [
                "reservation_id",
                "items[0].product_id",
                "items[0].quantity",
                "items[1].quantity",
                "ttl_seconds"
            ]
        );

        let empty = ReserveStockRequest {
            items: vec![],
            ..request.clone()
        };
        assert_eq!(
            bad_fields(&NewReservation::parse(&empty).unwrap_err()),
            ["items"]
        );
        let many = ReserveStockRequest {
            items: (0..101)
                .map(|_| item(&ProductId::generate().to_string(), 1))
                .collect(),
            ..request
        };
        assert_eq!(
            bad_fields(&NewReservation::parse(&many).unwrap_err()),
            ["items"]
        );
    }

    #[test]
    fn reservations_end_exactly_once() {
        use ReservationStatus::*;
        assert_eq!(Held.release(), Transition::Apply(Released));
        assert_eq!(Released.release(), Transition::AlreadyDone);
        assert_eq!(Expired.release(), Transition::AlreadyDone);
        assert_eq!(Committed.release(), Transition::Refused);
        assert_eq!(Held.commit(), Transition::Apply(Committed));
        assert_eq!(Committed.commit(), Transition::AlreadyDone);
        assert_eq!(Released.commit(), Transition::Refused);
        assert_eq!(Expired.commit(), Transition::Refused);
        assert_eq!(Committed.restock(), Transition::Apply(Restocked));
        assert_eq!(Restocked.restock(), Transition::AlreadyDone);
        assert_eq!(Held.restock(), Transition::Refused);
        assert_eq!(Released.restock(), Transition::Refused);
        assert_eq!(Expired.restock(), Transition::Refused);
        assert_eq!(Restocked.release(), Transition::Refused);
        assert_eq!(Restocked.commit(), Transition::Refused);
        for status in [Held, Released, Committed, Expired, Restocked] {
            assert_eq!(
                ReservationStatus::try_from(status.as_str().to_owned()).unwrap(),
                status
            );
        }
    }

    #[test]
    fn availability_is_stock_not_held() {
        let level = StockLevel {
            stock: 10,
            reserved: 7,
        };
        assert_eq!(level.available(), 3);
        assert!(level.in_stock());
        assert!(level.can_supply(Quantity::parse(3).unwrap()));
        assert!(!level.can_supply(Quantity::parse(4).unwrap()));
        assert!(
            !StockLevel {
                stock: 5,
                reserved: 5
            }
            .in_stock()
        );
    }
}

//! Products: names, descriptions, prices, images, status, and the create and update requests.

use api::product::{CreateProductRequest, UpdateProductRequest};
use vocab::{Fields, LineBreaks, Money, Problem, bounded_text};

use super::{CategoryId, ProductId, ShopId, UnknownValue};

/// A product's name: 1 to 200 characters once trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: &str) -> Result<Self, Problem> {
        bounded_text(value, 1..=Self::MAX_CHARS, LineBreaks::Refused).map(ProductName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description of a product or a category: at most 5000 characters once trimmed; may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 5000;

    pub fn parse(value: &str) -> Result<Self, Problem> {
        bounded_text(value, 0..=Self::MAX_CHARS, LineBreaks::Allowed).map(Description)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a product costs: an amount of money from 0 (free) up to 10^12 minor units, in any
/// ISO 4217 currency. The ceiling is the catalog's rule, not money's: it keeps a mistyped price
/// (and every total computed from it) far from overflowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price(Money);

impl Price {
    /// The largest price accepted: 10^12 minor units (ten billion dollars).
    pub const MAX_MINOR_UNITS: i64 = 1_000_000_000_000;

    pub fn new(money: Money) -> Result<Self, Problem> {
        Self::check_minor_units(money.minor_units())?;
        Ok(Price(money))
    }

    /// The bound on a price's minor units; a listing's price filters are held to it too.
    pub fn check_minor_units(minor_units: i64) -> Result<i64, Problem> {
        if minor_units < 0 {
            Err("must not be negative".into())
        } else if minor_units > Self::MAX_MINOR_UNITS {
            Err(format!("must be at most {}", Self::MAX_MINOR_UNITS).into())
        } else {
            Ok(minor_units)
        }
    }

    /// Reads the required money field `field` of a request, with the price's bound.
    fn read(fields: &mut Fields, field: &str, money: Option<&api::common::Money>) -> Option<Self> {
        fields
            .money(field, money, Self::check_minor_units)
            .map(Price)
    }

    pub fn money(self) -> Money {
        self.0
    }

    /// A shop's products are priced in the shop's currency (`shop_currency`, as the shop
    /// service spells it), so that a shop's prices and totals never mix currencies.
    pub fn check_shop_currency(self, shop_currency: &str) -> Result<(), rpc::Error> {
        if self.0.currency().code() == shop_currency {
            Ok(())
        } else {
            Err(rpc::Error::invalid_field(
                "price.currency",
                format!("must be {shop_currency}, the currency of the shop"),
            ))
        }
    }
}

/// Whether a product is for sale. Inactive products are visible to admins only.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    #[default]
    Active,
    Inactive,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Active => "active",
            ProductStatus::Inactive => "inactive",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value {
            "active" => Ok(ProductStatus::Active),
            "inactive" => Ok(ProductStatus::Inactive),
            _ => Err("must be \"active\" or \"inactive\"".into()),
        }
    }

    /// The contract's default: an empty status means active.
    pub fn parse_or_default(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            Ok(ProductStatus::default())
        } else {
            Self::parse(value)
        }
    }
}

impl TryFrom<String> for ProductStatus {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).map_err(|_| UnknownValue(value))
    }
}

/// Up to 10 image URLs, each absolute http or https.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageUrls(Vec<String>);

impl ImageUrls {
    pub const MAX_COUNT: usize = 10;
    pub const MAX_URL_CHARS: usize = 2048;

    pub fn parse(values: &[String]) -> Result<Self, Problem> {
        if values.len() > Self::MAX_COUNT {
            return Err(format!("must have at most {} URLs", Self::MAX_COUNT).into());
        }
        let mut urls = Vec::with_capacity(values.len());
        for (index, value) in values.iter().enumerate() {
            let value = value.trim();
            if value.chars().count() > Self::MAX_URL_CHARS {
                return Err(format!(
                    "URL {index} is longer than {} characters",
                    Self::MAX_URL_CHARS
                )
                .into());
            }
            let is_web_url = url::Url::parse(value).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some_and(|host| !host.is_empty())
            });
            if !is_web_url {
                return Err(format!("URL {index} is not an absolute http or https URL").into());
            }
            urls.push(value.to_owned());
        }
        Ok(ImageUrls(urls))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// Units of a product on hand: never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stock(i64);

impl Stock {
    pub fn parse(value: i64) -> Result<Self, Problem> {
        if value < 0 {
            Err("must not be negative".into())
        } else {
            Ok(Stock(value))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A product to create, every field valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProduct {
    pub shop_id: ShopId,
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub category_id: Option<CategoryId>,
    pub image_urls: ImageUrls,
    pub status: ProductStatus,
    pub initial_stock: Stock,
}

impl NewProduct {
    pub fn parse(request: &CreateProductRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let shop_id = fields.parse("shop_id", ShopId::parse(&request.shop_id));
        let name = fields.parse("name", ProductName::parse(&request.name));
        let description = fields.parse("description", Description::parse(&request.description));
        let price = Price::read(&mut fields, "price", request.price.as_ref());
        let category_id = fields.parse(
            "category_id",
            CategoryId::parse_optional(&request.category_id),
        );
        let image_urls = fields.parse("image_urls", ImageUrls::parse(&request.image_urls));
        let status = fields.parse("status", ProductStatus::parse_or_default(&request.status));
        let initial_stock = fields.parse("initial_stock", Stock::parse(request.initial_stock));
        fields.finish(|| {
            Some(NewProduct {
                shop_id: shop_id?,
                name: name?,
                description: description?,
                price: price?,
                category_id: category_id?,
                image_urls: image_urls?,
                status: status?,
                initial_stock: initial_stock?,
            })
        })
    }
}

/// The fields of a product to change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductChanges {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Price>,
    /// `Some(None)` takes the product out of its category.
    pub category_id: Option<Option<CategoryId>>,
    pub image_urls: Option<ImageUrls>,
    pub status: Option<ProductStatus>,
}

impl ProductChanges {
    /// The product to change and what to change in it.
    pub fn parse(request: &UpdateProductRequest) -> Result<(ProductId, Self), rpc::Error> {
        let mut fields = Fields::default();
        let id = fields.parse("id", ProductId::parse(&request.id));
        let name = fields.optional("name", request.name.as_deref(), ProductName::parse);
        let description = fields.optional(
            "description",
            request.description.as_deref(),
            Description::parse,
        );
        let price = request
            .price
            .as_ref()
            .map(|price| Price::read(&mut fields, "price", Some(price)));
        let category_id = fields.optional(
            "category_id",
            request.category_id.as_deref(),
            CategoryId::parse_optional,
        );
        let image_urls = fields.optional(
            "image_urls",
            request
                .image_urls
                .as_ref()
                .map(|list| list.values.as_slice()),
            ImageUrls::parse,
        );
        let status = fields.optional("status", request.status.as_deref(), ProductStatus::parse);
        fields.finish(|| {
            Some((
                id?,
                ProductChanges {
                    name: name?,
                    description: description?,
                    price: price.map_or(Some(None), |price| price.map(Some))?,
                    category_id: category_id?,
                    image_urls: image_urls?,
                    status: status?,
                },
            ))
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == ProductChanges::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prices_are_in_the_currency_of_their_shop() {
        let price = |currency| {
            super::Price::new(vocab::Money::new(
                100,
                vocab::Currency::parse(currency).unwrap(),
            ))
            .unwrap()
        };
        assert!(price("USD").check_shop_currency("USD").is_ok());
        let error = price("EUR").check_shop_currency("USD").unwrap_err();
        assert_eq!(testkit::bad_fields(&error), ["price.currency"]);
    }

    use api::common::Money as ApiMoney;
    use testkit::bad_fields;
    use uuid::Uuid;
    use vocab::Currency;

    use super::*;

    fn valid_create() -> CreateProductRequest {
        CreateProductRequest {
            shop_id: Uuid::now_v7().to_string(),
            name: "  Premium Widget ".into(),
            description: "A widget.\nWith two lines.".into(),
            price: Some(ApiMoney {
                minor_units: 2999,
                currency: "USD".into(),
            }),
            category_id: String::new(),
            image_urls: vec!["https://img.example.com/w.png".into()],
            status: String::new(),
            initial_stock: 5,
        }
    }

    #[test]
    fn a_valid_product_parses_trimmed_with_defaults() {
        let product = NewProduct::parse(&valid_create()).unwrap();
        assert_eq!(product.name.as_str(), "Premium Widget");
        assert_eq!(product.price.money().minor_units(), 2999);
        assert_eq!(product.price.money().currency(), Currency::USD);
        assert_eq!(product.status, ProductStatus::Active);
        assert_eq!(product.category_id, None);
        assert_eq!(product.initial_stock.get(), 5);
    }

    #[test]
    fn every_bad_product_field_is_named_at_once() {
        let request = CreateProductRequest {
            shop_id: "shop-1".into(),
            name: "   ".into(),
            description: "x".repeat(5001),
            price: Some(ApiMoney {
                minor_units: -1,
                currency: "XYZ".into(),
            }),
            category_id: "not-a-uuid".into(),
            image_urls: vec!["ftp://example.com/a.png".into()],
            status: "archived".into(),
            initial_stock: -3,
        };
        let error = NewProduct::parse(&request).unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "shop_id",
                "name",
                "description",
                "price.minor_units",
                "price.currency",
                "category_id",
                "image_urls",
                "status",
                "initial_stock"
            ]
        );
    }

    #[test]
    fn a_product_needs_a_price() {
        let request = CreateProductRequest {
            price: None,
            ..valid_create()
        };
        assert_eq!(
            bad_fields(&NewProduct::parse(&request).unwrap_err()),
            ["price"]
        );
    }

    #[test]
    fn names_are_1_to_200_characters_after_trimming() {
        assert!(ProductName::parse("").is_err());
        assert!(ProductName::parse(" \t ").is_err());
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
        assert!(ProductName::parse("nul\0byte").is_err());
        assert!(Description::parse("line one\nline two").is_ok());
        assert!(Description::parse("").is_ok());
    }

    #[test]
    fn prices_are_bounded_minor_units() {
        let usd = Currency::USD;
        assert!(Price::new(Money::new(0, usd)).is_ok());
        assert!(Price::new(Money::new(Price::MAX_MINOR_UNITS, usd)).is_ok());
        assert_eq!(
            Price::new(Money::new(Price::MAX_MINOR_UNITS + 1, usd)).unwrap_err(),
            "must be at most 1000000000000"
        );
        assert_eq!(
            Price::new(Money::new(-1, usd)).unwrap_err(),
            "must not be negative"
        );
    }

    #[test]
    fn image_urls_are_at_most_ten_web_urls() {
        let ok: Vec<String> = (0..10)
            .map(|i| format!("http://cdn.example.com/{i}.jpg"))
            .collect();
        assert_eq!(ImageUrls::parse(&ok).unwrap().as_slice().len(), 10);
        let too_many: Vec<String> = (0..11).map(|i| format!("https://e.com/{i}")).collect();
        assert!(ImageUrls::parse(&too_many).is_err());
        for bad in [
            "",
            "example.com/a.png",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://",
        ] {
            assert!(
                ImageUrls::parse(&[bad.to_owned()]).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn updates_change_only_what_is_present() {
        let id = Uuid::now_v7().to_string();
        let (parsed_id, changes) = ProductChanges::parse(&UpdateProductRequest {
            id: id.clone(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(parsed_id.to_string(), id);
        assert!(changes.is_empty());

        let (_, changes) = ProductChanges::parse(&UpdateProductRequest {
            id: id.clone(),
            name: Some("New name".into()),
            category_id: Some(String::new()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(changes.name.unwrap().as_str(), "New name");
        assert_eq!(changes.category_id, Some(None));
        assert_eq!(changes.description, None);

        let error = ProductChanges::parse(&UpdateProductRequest {
            id: "nope".into(),
            name: Some(String::new()),
            price: Some(ApiMoney {
                minor_units: 5,
                currency: "usd".into(),
            }),
            status: Some("gone".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            ["id", "name", "price.currency", "status"]
        );
    }
}

-- Orders: immutable documents split into four tables keyed by order_uid (items by position).
-- order_uid uses the "C" collation so "newest, ties by id" orders the same everywhere.
-- date_created keeps the instant for ordering; date_created_text the producer's exact text,
-- so the stored document round-trips unchanged.
CREATE TABLE orders (
    order_uid          text COLLATE "C" PRIMARY KEY,
    track_number       text NOT NULL,
    entry              text NOT NULL,
    locale             text NOT NULL,
    internal_signature text NOT NULL,
    customer_id        text NOT NULL,
    delivery_service   text NOT NULL,
    shardkey           text NOT NULL,
    sm_id              bigint NOT NULL,
    date_created       timestamptz NOT NULL,
    date_created_text  text NOT NULL,
    oof_shard          text NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX orders_date_created_idx ON orders (date_created DESC, order_uid);

CREATE TABLE deliveries (
    order_uid text COLLATE "C" PRIMARY KEY REFERENCES orders (order_uid) ON DELETE CASCADE,
    name      text NOT NULL,
    phone     text NOT NULL,
    zip       text NOT NULL,
    city      text NOT NULL,
    address   text NOT NULL,
    region    text NOT NULL,
    email     text NOT NULL
);

CREATE TABLE payments (
    order_uid     text COLLATE "C" PRIMARY KEY REFERENCES orders (order_uid) ON DELETE CASCADE,
    transaction   text NOT NULL,
    request_id    text NOT NULL,
    currency      text NOT NULL,
    provider      text NOT NULL,
    amount        bigint NOT NULL,
    payment_dt    bigint NOT NULL,
    bank          text NOT NULL,
    delivery_cost bigint NOT NULL,
    goods_total   bigint NOT NULL,
    custom_fee    bigint NOT NULL
);

CREATE TABLE items (
    order_uid    text COLLATE "C" NOT NULL REFERENCES orders (order_uid) ON DELETE CASCADE,
    position     integer NOT NULL,
    chrt_id      bigint NOT NULL,
    track_number text NOT NULL,
    price        bigint NOT NULL,
    rid          text NOT NULL,
    name         text NOT NULL,
    sale         integer NOT NULL,
    size         text NOT NULL,
    total_price  bigint NOT NULL,
    nm_id        bigint NOT NULL,
    brand        text NOT NULL,
    status       bigint NOT NULL,
    PRIMARY KEY (order_uid, position)
);

-- The message-shaped JSON document of every order, built by Postgres (keys in model.json order).
CREATE VIEW order_documents AS
SELECT
    o.order_uid,
    o.date_created,
    json_build_object(
        'order_uid', o.order_uid,
        'track_number', o.track_number,
        'entry', o.entry,
        'delivery', json_build_object(
            'name', d.name, 'phone', d.phone, 'zip', d.zip, 'city', d.city,
            'address', d.address, 'region', d.region, 'email', d.email),
        'payment', json_build_object(
            'transaction', p.transaction, 'request_id', p.request_id,
            'currency', p.currency, 'provider', p.provider, 'amount', p.amount,
            'payment_dt', p.payment_dt, 'bank', p.bank, 'delivery_cost', p.delivery_cost,
            'goods_total', p.goods_total, 'custom_fee', p.custom_fee),
        'items', (
            SELECT json_agg(json_build_object(
                'chrt_id', i.chrt_id, 'track_number', i.track_number, 'price', i.price,
                'rid', i.rid, 'name', i.name, 'sale', i.sale, 'size', i.size,
                'total_price', i.total_price, 'nm_id', i.nm_id, 'brand', i.brand,
                'status', i.status) ORDER BY i.position)
            FROM items i WHERE i.order_uid = o.order_uid),
        'locale', o.locale,
        'internal_signature', o.internal_signature,
        'customer_id', o.customer_id,
        'delivery_service', o.delivery_service,
        'shardkey', o.shardkey,
        'sm_id', o.sm_id,
        'date_created', o.date_created_text,
        'oof_shard', o.oof_shard
    ) AS document
FROM orders o
JOIN deliveries d ON d.order_uid = o.order_uid
JOIN payments p ON p.order_uid = o.order_uid;

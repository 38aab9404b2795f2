-- The catalog: projects and their goods. Priorities are unique across the whole table; the
-- constraint is checked at commit so a reprioritize can shift many goods in one UPDATE.
CREATE TABLE projects (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO projects (id, name) VALUES (1, 'Первая запись');
SELECT setval(pg_get_serial_sequence('projects', 'id'), (SELECT max(id) FROM projects));

CREATE TABLE goods (
    id          serial,
    project_id  integer NOT NULL REFERENCES projects (id),
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    priority    integer NOT NULL,
    removed     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, project_id),
    CONSTRAINT goods_priority_unique UNIQUE (priority) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT goods_priority_positive CHECK (priority >= 1)
);

CREATE INDEX goods_project_id_idx ON goods (project_id);
CREATE INDEX goods_name_idx ON goods (name);

-- Models registered for the accelerator service (server/accel): a name
-- modules load with wasi_ephemeral_nn.load_by_name and grants list, and
-- where the model lives on the server's disk. The accelerator serves
-- exactly these.
CREATE TABLE models (
    name        TEXT PRIMARY KEY,
    path        TEXT NOT NULL,             -- a folder holding model.onnx, or an .onnx file; '' on a remote accelerator
    description TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

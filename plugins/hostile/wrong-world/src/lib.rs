//! Hostile test component: a well-formed component of some other world. The host
//! must refuse it with one clear error naming what it exports.

wit_bindgen::generate!({
    inline: "package acme:other@1.0.0;
             world greeter { export greet: func() -> string; }",
});

pub struct Greeter;

impl Guest for Greeter {
    fn greet() -> String {
        "not a backup driver".into()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Greeter);

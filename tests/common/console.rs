//! A person at the MSP console over plain HTTP: a cookie jar of one cookie, no redirects
//! followed, and the Origin a browser sends with the console's forms. Shared by every console
//! suite (sign-in, set-up pages, the technician's pages, the overview pages).

use vouch::domain::ActorKind;
use vouch::store::audit::AuditActor;

use super::TestApp;

/// The actor of set-up done by a test itself.
pub fn system() -> AuditActor {
    AuditActor {
        kind: ActorKind::System,
        id: None,
        name: Some("tests".into()),
    }
}

#[derive(Clone)]
pub struct Agent {
    client: reqwest::Client,
    base: String,
    pub origin: String,
    pub cookie: Option<String>,
    /// Pages are read with minijinja's `&#x2f;` turned back into `/`, for suites that look
    /// for addresses as written (see [`Agent::reading_addresses`]).
    unescape_slashes: bool,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Agent {
    pub fn new(app: &TestApp) -> Agent {
        Agent::at(app, app.ctx.config.http.public_url.as_str())
    }

    /// An agent of `app`, sending the Origin of `public_url`.
    pub fn at(app: &TestApp, public_url: &str) -> Agent {
        Agent {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base_url.clone(),
            origin: public_url.trim_end_matches('/').to_owned(),
            cookie: None,
            unescape_slashes: false,
        }
    }

    /// This agent, reading `&#x2f;` in pages as `/` (minijinja escapes `/` in HTML).
    pub fn reading_addresses(mut self) -> Agent {
        self.unescape_slashes = true;
        self
    }

    /// Another agent of `app` holding this one's cookie (the same session elsewhere).
    pub fn with_cookie(&self, app: &TestApp) -> Agent {
        let mut other = Agent::at(app, &self.origin);
        other.cookie = self.cookie.clone();
        other
    }

    /// Signed in as `email` (a user without a second factor).
    pub async fn signed_in(app: &TestApp, email: &str, password: &str) -> Agent {
        let mut agent = Agent::new(app);
        let page = agent
            .post(
                "/console/sign-in",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/console"));
        agent
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("vouch_console={cookie}"));
        }
        self.read(request.send().await.unwrap()).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.origin.clone();
        self.post_from(path, form, Some(&origin)).await
    }

    pub async fn post_from(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut request = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("vouch_console={cookie}"));
        }
        self.read(request.send().await.unwrap()).await
    }

    /// Posts `body` as it is with `content_type` (a `multipart/form-data` upload, say), with
    /// `origin` as its Origin (none for `None`).
    pub async fn post_body(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        origin: Option<&str>,
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("vouch_console={cookie}"));
        }
        self.read(request.send().await.unwrap()).await
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookie: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookie {
            if let Some(value) = cookie
                .split(';')
                .next()
                .and_then(|v| v.strip_prefix("vouch_console="))
            {
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        Page {
            status,
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookie,
            headers,
            body: {
                let body = response.text().await.unwrap();
                if self.unescape_slashes {
                    body.replace("&#x2f;", "/")
                } else {
                    body
                }
            },
        }
    }
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

module github.com/accessauth/caddy-access-auth/interop

go 1.26.8

replace github.com/accessauth/caddy-access-auth => ../

require github.com/jdcloud-api/jdcloud-sdk-go v1.66.0

require github.com/gofrs/uuid v4.4.0+incompatible // indirect

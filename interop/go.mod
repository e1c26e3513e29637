module github.com/accessauth/caddy-access-auth/interop

go 1.26.8

replace github.com/accessauth/caddy-access-auth => ../

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/jdcloud-api/jdcloud-sdk-go v1.66.0
	github.com/sliveryou/aliyun-api-gateway-sign v1.0.5
)

require (
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/gofrs/uuid v4.4.0+incompatible // indirect
	github.com/google/uuid v1.6.0 // indirect
)
